package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// retentionRepo writes ten days of hourly segments, ending now, with a
// snapshot every day, straight through the repository format.
func retentionRepo(t *testing.T) (dir string, r *repo.Repository, segs []repo.SegmentInfo) {
	ctx := context.Background()
	dir = t.TempDir()
	st, err := storage.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if r, err = repo.Init(ctx, st, repo.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now().Add(-240 * time.Hour).Truncate(time.Hour)
	if err := r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: "0123456789abcdef", Flavor: "mongodb", Started: start}); err != nil {
		t.Fatal(err)
	}
	for h := 0; h < 240; h++ {
		ts := optime.Timestamp{T: uint32(start.Add(time.Duration(h) * time.Hour).Unix()), I: 1}
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(h)}})
		e, _ := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: 1}}, {Key: "op", Value: "i"}, {Key: "ns", Value: "d.c"}, {Key: "o", Value: bson.Raw(doc)}})
		s, err := r.WriteSegment(ctx, "rs0", "0123456789abcdef", []bson.Raw{e})
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s)
		if h%24 == 3 {
			id := fmt.Sprintf("%s-%08x", ts.Time().Format("20060102T150405Z"), h)
			ref, err := r.WriteChunk(ctx, "rs0", id, "c0", 0, []bson.Raw{doc})
			if err != nil {
				t.Fatal(err)
			}
			m := repo.Manifest{ID: id, Shard: "rs0", Start: ts, End: ts, Started: ts.Time(), Finished: ts.Time(),
				Collections: []repo.CollectionManifest{{DB: "d", Name: "c", UUID: "c0", Count: 1, Bytes: ref.Bytes, Chunks: []repo.ChunkRef{ref}}}}
			if err := r.WriteManifest(ctx, m); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir, r, segs
}

// listing is every file under dir with its size.
func listing(t *testing.T, dir string) []string {
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && !strings.Contains(p, "/locks/") {
			out = append(out, fmt.Sprintf("%s %d %s", strings.TrimPrefix(p, dir), fi.Size(), fi.ModTime()))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func TestPruneCommand(t *testing.T) {
	dir, r, segs := retentionRepo(t)
	url := "file://" + dir
	before := listing(t, dir)

	code, out, errs := cli(t, "prune", "--repo", url, "--restore-window", "3d", "--daily", "2", "--dry-run")
	if code != 0 || !strings.Contains(out, "DROP") || !strings.Contains(out, "would delete") || !strings.Contains(out, "daily 1 of 2") {
		t.Fatalf("dry run: exit %d\n%s\n%s", code, out, errs)
	}
	t.Logf("dry run output:\n%s", out)
	if after := listing(t, dir); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Fatalf("--dry-run changed the repository:\nbefore %d objects, after %d", len(before), len(after))
	}
	code, out, _ = cli(t, "prune", "--repo", url, "--restore-window", "3d", "--dry-run", "--json")
	var js pruneJSON
	if code != 0 || json.Unmarshal([]byte(out), &js) != nil || !js.DryRun || len(js.Shards) != 1 || len(js.Shards[0].Snapshots) != 10 {
		t.Fatalf("--json: exit %d, %+v\n%s", code, js, out)
	}

	// An agent holds the writer lock: prune by hand is refused, naming it.
	lock, err := r.Lock(context.Background(), repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	code, _, errs = cli(t, "prune", "--repo", url)
	wantFailure(t, code, errs, 11, "locked", "agent", "rewind unlock")
	if err := lock.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}

	code, out, errs = cli(t, "prune", "--repo", url, "--restore-window", "3d")
	if code != 0 || !strings.Contains(out, "deleted 6 snapshots") {
		t.Fatalf("prune: exit %d\n%s\n%s", code, out, errs)
	}
	code, out, errs = cli(t, "verify", "--repo", url, "--read-data")
	if code != 0 || !strings.HasPrefix(out, "HEALTHY") {
		t.Fatalf("verify after prune: exit %d\n%s\n%s", code, out, errs)
	}

	// Damage the newest segment: verify says which object and what it breaks.
	key := segs[len(segs)-1].Key
	p := filepath.Join(dir, key)
	b, _ := os.ReadFile(p)
	b[len(b)-3] ^= 1
	os.WriteFile(p, b, 0o644)
	code, out, errs = cli(t, "verify", "--repo", url)
	if code != 0 {
		t.Fatalf("structure-only verify reads no data: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli(t, "verify", "--repo", url, "--read-data")
	wantFailure(t, code, errs, 3, "verify found 1 problem (listed above)", "outside the spans under RESTORABLE", "put back")
	if !strings.HasPrefix(out, "PROBLEMS") || !strings.Contains(out, key) || !strings.Contains(out, "breaks") || !strings.Contains(out, "RESTORABLE (what remains)") {
		t.Fatalf("verify output does not name the object and what it breaks:\n%s", out)
	}
	code, out, _ = cli(t, "verify", "--repo", url, "--read-data", "--json")
	var vj verifyJSON
	if code != 3 || json.Unmarshal([]byte(out), &vj) != nil || vj.Healthy || vj.Findings[0].Object != key || len(vj.Remaining) == 0 {
		t.Fatalf("verify --json: exit %d %+v", code, vj)
	}

	code, _, errs = cli(t, "verify", "--repo", url, "--to", "latest")
	wantFailure(t, code, errs, 2, "--to needs --restore-to")
	code, _, errs = cli(t, "prune", "--repo", url, "--restore-window", "soon")
	wantFailure(t, code, errs, 2, "--restore-window")
}

func TestVerifyRestoreTo(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	srv := testserver.Start(t)
	code, out, errs := cli(t, "verify", "--repo", "file://"+dir, "--restore-to", srv.URI(), "--json")
	var vj verifyJSON
	if code != 0 || json.Unmarshal([]byte(out), &vj) != nil || !vj.Healthy || vj.Trial == nil ||
		len(vj.Trial.Namespaces) != 1 || vj.Trial.Namespaces[0].Final != 21 { // the newest snapshot's document and 20 inserts after it
		t.Fatalf("verify --restore-to: exit %d\n%s\n%s", code, out, errs)
	}
	code, _, errs = cli(t, "verify", "--repo", "file://"+dir, "--restore-to", srv.URI())
	wantFailure(t, code, errs, 1, "not empty", "holds d")
}

// An encrypted repository: prune and verify need the identity and say so.
func TestPruneVerifyEncrypted(t *testing.T) {
	dir := t.TempDir()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "key.txt")
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	ctx := context.Background()
	st, err := storage.Open(ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{Recipient: id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	ts := optime.Timestamp{T: uint32(time.Now().Add(-time.Hour).Unix()), I: 1}
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
	ref, err := r.WriteChunk(ctx, "rs0", "20261125T000000Z-00000001", "c0", 0, []bson.Raw{doc})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteManifest(ctx, repo.Manifest{ID: "20261125T000000Z-00000001", Shard: "rs0", Start: ts, End: ts,
		Collections: []repo.CollectionManifest{{DB: "d", Name: "c", UUID: "c0", Count: 1, Bytes: ref.Bytes, Chunks: []repo.ChunkRef{ref}}}}); err != nil {
		t.Fatal(err)
	}
	url := "file://" + dir
	code, _, errs := cli(t, "prune", "--repo", url, "--dry-run")
	wantFailure(t, code, errs, 1, "--identity")
	code, _, errs = cli(t, "verify", "--repo", url)
	wantFailure(t, code, errs, 1, "--identity")
	code, out, errs := cli(t, "verify", "--repo", url, "--identity", keyFile, "--read-data")
	if code != 0 || !strings.HasPrefix(out, "HEALTHY") {
		t.Fatalf("verify with the identity: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = cli(t, "prune", "--repo", url, "--identity", keyFile)
	if code != 0 || !strings.Contains(out, "deleted 0 snapshots") {
		t.Fatalf("prune with the identity: exit %d\n%s%s", code, out, errs)
	}
}
