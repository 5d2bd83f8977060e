package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestObjectLockSurvivesAnAttack makes an object-locked repository on S3
// (versitygw with Object Lock), takes two snapshots, then attacks every
// object with the repository's own credentials: deleting a stored version
// is refused; overwrites and delete markers are accepted by S3 but change
// nothing rewind reads: both snapshots restore exactly (the oracle), with
// no manual step. prune then leaves the snapshot its policy drops and says
// when it will go.
func TestObjectLockSurvivesAnAttack(t *testing.T) {
	srv, srv2 := testserver.Start(t), testserver.Start(t)
	s3srv := storagetest.StartS3Locked(t)
	for _, kv := range s3srv.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	url := s3srv.BucketURL(s3srv.Bucket, "repo")
	ctx := t.Context()

	for _, days := range []string{"0", "-5"} {
		code, _, stderr := cli(t, "init", "--repo", url, "--object-lock", days)
		wantFailure(t, code, stderr, 2, "--object-lock "+days, "from 1")
	}
	code, out, stderr := cli(t, "init", "--repo", url, "--object-lock", "30")
	if code != 0 || !strings.Contains(out, "object lock: COMPLIANCE") {
		t.Fatalf("init --object-lock 30: %d\n%s%s", code, out, stderr)
	}
	code, out, _ = cli(t, "repo", "info", "--repo", url, "--json")
	var info repoInfo
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || info.ObjectLock != "on" || info.LockMode != "COMPLIANCE" || info.LockDays != 30 {
		t.Fatalf("repo info: %d %v\n%s", code, err, out)
	}

	db := srv.DB("worm")
	coll := srv.Client().Database(db).Collection("orders")
	ok := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for i := range 20 {
		ok(coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "qty", Value: i}}))
	}
	mark1 := snapshotAndMark(t, srv, url, db)
	for i := range 5 {
		ok(coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: -i}}}}))
	}
	for i := 10; i < 13; i++ {
		ok(coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: i}}))
	}
	mark2 := snapshotAndMark(t, srv, url, db)

	attack(t, s3srv)

	for i, m := range []oracle.Mark{mark1, mark2} {
		to := fmt.Sprintf("%d:%d", m.TS.T, m.TS.I)
		into := srv2.DB(fmt.Sprintf("r%d", i+1))
		code, out, stderr := cli(t, "restore", "--repo", url, "--target", srv2.URI(), "--to", to, "--rename", db+"="+into)
		if code != 0 {
			t.Fatalf("restore to mark %d after the attack: %d\n%s%s", i+1, code, out, stderr)
		}
		f := oracle.Filter{Include: []string{db}, Rename: map[string]string{db: into}}
		if err := oracle.Compare(ctx, srv2.Client(), m, f); err != nil {
			t.Fatalf("restore to mark %d after the attack: %v", i+1, err)
		}
	}

	// Audit entries are rewritten with their outcome: on a locked
	// repository too, both restores read back as finished.
	code, out, stderr = cli(t, "audit", "--repo", url, "--json")
	var audit struct {
		Entries []struct{ Action, Outcome string } `json:"entries"`
	}
	if err := json.Unmarshal([]byte(out), &audit); code != 0 || err != nil {
		t.Fatalf("audit --json: %d %v\n%s%s", code, err, out, stderr)
	}
	restores := 0
	for _, e := range audit.Entries {
		if e.Action == "restore" {
			restores++
			if e.Outcome != "ok" {
				t.Errorf("a restore's audit entry reads %q on the locked repository, want ok", e.Outcome)
			}
		}
	}
	if restores != 2 {
		t.Errorf("the audit lists %d restores, want 2:\n%s", restores, out)
	}

	// The policy drops the first snapshot; the lock keeps it, and says
	// until when, in the dry run and in the prune itself.
	var l listJSON
	code, out, _ = cli(t, "list", "--repo", url, "--json")
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Shards) != 1 || len(l.Shards[0].Snapshots) != 2 {
		t.Fatalf("list after the attack: %d %v\n%s", code, err, out)
	}
	first := l.Shards[0].Snapshots[0].ID
	// The second snapshot must be older than the 1 s restore window.
	time.Sleep(time.Until(time.Unix(int64(mark2.TS.T)+3, 0)))
	inAMonth := time.Now().AddDate(0, 0, 30).UTC().Format("2006-01-02")
	for _, dry := range []bool{true, false} {
		args := []string{"prune", "--repo", url, "--restore-window", "1s"}
		if dry {
			args = append(args, "--dry-run")
		}
		code, out, stderr = cli(t, args...)
		if code != 0 || !strings.Contains(out, "HELD BY OBJECT LOCK") || !strings.Contains(out, "snapshot "+first+"\tafter "+inAMonth) &&
			!strings.Contains(flat(out), "snapshot "+first+" after "+inAMonth) {
			t.Fatalf("prune (dry run %v): %d\n%s%s", dry, code, out, stderr)
		}
	}
	code, out, _ = cli(t, "list", "--repo", url, "--json")
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Shards[0].Snapshots) != 2 {
		t.Fatalf("list after prune: want both snapshots still there: %d %v\n%s", code, err, out)
	}
}

// snapshotAndMark takes a snapshot of db and records the source's state.
func snapshotAndMark(t *testing.T, srv *testserver.Server, url, db string) oracle.Mark {
	t.Helper()
	code, out, stderr := cli(t, "snapshot", "--repo", url, "--source", srv.URI(), "--ns", db+".*")
	if code != 0 {
		t.Fatalf("snapshot: %s %s", out, stderr)
	}
	ts, err := oracle.LastOplogTS(t.Context(), srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	st, err := oracle.Snapshot(t.Context(), srv.Client(), oracle.Filter{Include: []string{db}})
	if err != nil {
		t.Fatal(err)
	}
	return oracle.Mark{TS: ts, State: st}
}

// attack does, with the repository's credentials, what an intruder would:
// delete every stored version of every object (refused for every object
// rewind locks), then overwrite every other object and put a delete marker
// on the rest, the config and the manifests included.
func attack(t *testing.T, srv *storagetest.S3Server) {
	t.Helper()
	ctx := t.Context()
	cl := srv.Client()
	bucket := aws.String(srv.Bucket)
	vs, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bucket, Prefix: aws.String("repo/")})
	if err != nil || aws.ToBool(vs.IsTruncated) {
		t.Fatalf("list versions: %v (truncated %v)", err, vs != nil && aws.ToBool(vs.IsTruncated))
	}
	var keys []string
	kinds := map[string]int{}
	for _, v := range vs.Versions {
		key := strings.TrimPrefix(aws.ToString(v.Key), "repo/")
		if repo.MutableKey(key) {
			continue
		}
		keys = append(keys, aws.ToString(v.Key))
		kinds[strings.SplitN(key, "/", 2)[0]]++
		_, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: v.Key, VersionId: v.VersionId})
		if err == nil {
			t.Fatalf("deleting version %s of %s with the repository's credentials succeeded", aws.ToString(v.VersionId), key)
		}
	}
	if kinds["config"] != 1 || kinds["snapshots"] != 2 || kinds["oplog"] == 0 || kinds["data"] == 0 {
		t.Fatalf("attacked objects by kind %v: want the config, 2 manifests, segments and chunks", kinds)
	}
	for i, k := range keys {
		if i%2 == 0 || strings.HasSuffix(k, "/config") {
			_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(k), Body: strings.NewReader("forged")})
		} else {
			_, err = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: aws.String(k)})
		}
		if err != nil {
			t.Fatalf("attack on %s: %v", k, err)
		}
	}
	// What a plain reader of the bucket now sees: forgeries and holes.
	cur, err := cl.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: bucket, Prefix: aws.String("repo/")})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range cur.Contents {
		if !repo.MutableKey(strings.TrimPrefix(aws.ToString(o.Key), "repo/")) && aws.ToInt64(o.Size) != int64(len("forged")) {
			t.Fatalf("%s was not overwritten or hidden by the attack", aws.ToString(o.Key))
		}
	}
	t.Logf("attacked %d objects %v: every version delete refused; %d overwritten, the rest behind delete markers", len(keys), kinds, (len(keys)+1)/2)
}
