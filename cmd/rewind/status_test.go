package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// newRepoDir creates an empty repository in a new directory.
func newRepoDir(t *testing.T) (string, *repo.Repository) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := storage.Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, r
}

// oplogOnlyRepo is a repository with one segment of oplog and no snapshot.
func oplogOnlyRepo(t *testing.T) string {
	ctx := context.Background()
	dir, r := newRepoDir(t)
	ts := optime.Timestamp{T: uint32(time.Now().Add(-time.Minute).Unix()), I: 1}
	e, _ := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: 1}}, {Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: bson.D{}}})
	if err := r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: "0123456789abcdef", Flavor: "mongodb", Started: ts.Time()}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteSegment(ctx, "rs0", "0123456789abcdef", []bson.Raw{e}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// status warns, in text and JSON, when nothing is restorable: an empty
// repository, or oplog with no snapshot; not once a snapshot exists.
func TestStatusWarnsWhenNothingIsRestorable(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if code, _, stderr := cli(t, "init", "--repo", empty); code != 0 {
		t.Fatal(stderr)
	}
	withSnapshots, _, _ := retentionRepo(t)
	for _, tc := range []struct {
		name, dir string
		warn      bool
	}{{"empty", empty, true}, {"oplog, no snapshot", oplogOnlyRepo(t), true}, {"snapshots", withSnapshots, false}} {
		code, out, stderr := cli(t, "status", "--repo", tc.dir)
		if code != 0 {
			t.Fatalf("%s: status: exit %d %s", tc.name, code, stderr)
		}
		if got := strings.Contains(out, "WARNING") && strings.Contains(out, "nothing is restorable") && strings.Contains(out, "rewind snapshot"); got != tc.warn {
			t.Errorf("%s: warning shown %v, want %v:\n%s", tc.name, got, tc.warn, out)
		}
		code, out, _ = cli(t, "status", "--repo", tc.dir, "--json")
		var js struct {
			Restorable bool     `json:"restorable"`
			Warnings   []string `json:"warnings"`
		}
		if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil || js.Restorable == tc.warn || (len(js.Warnings) > 0) != tc.warn {
			t.Errorf("%s: status --json: exit %d, %+v, %v\n%s", tc.name, code, js, err, out)
		}
	}
}

// verify on a repository that can restore nothing says so plainly on its
// first line and exits 3, fit for cron; its last line says what to do (and
// nothing about damaged objects, when none is); with --json the answer is
// on stdout only.
func TestVerifyNothingRestorable(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	if code, _, stderr := cli(t, "init", "--repo", empty); code != 0 {
		t.Fatal(stderr)
	}
	for _, tc := range []struct{ dir, what string }{{empty, "no snapshot and no oplog"}, {oplogOnlyRepo(t), "holds oplog but no snapshot"}} {
		code, out, stderr := cli(t, "verify", "--repo", tc.dir)
		wantFailure(t, code, stderr, 3, "verify found 1 problem: ", tc.what, "nothing is restorable yet", "rewind snapshot")
		if strings.Contains(stderr, "put back") || strings.Contains(stderr, "problems") {
			t.Errorf("verify's last line does not fit: %s", stderr)
		}
		if first, _, _ := strings.Cut(out, "\n"); !strings.HasPrefix(first, "PROBLEMS: 1 found") || !strings.Contains(out, "nothing is restorable yet") {
			t.Errorf("verify output:\n%s", out)
		}
		code, out, stderr = cli(t, "verify", "--repo", tc.dir, "--json")
		var js verifyJSON
		if code != 3 || stderr != "" || json.Unmarshal([]byte(out), &js) != nil || js.Problems != 1 {
			t.Errorf("verify --json: exit %d, stderr %q\n%s", code, stderr, out)
		}
	}
}

// verify on an encrypted repository without its identity says what to give
// once.
func TestVerifyIdentityHintOnce(t *testing.T) {
	url, _, key := encryptedRepo(t)
	t.Setenv("REWIND_IDENTITY", "")
	code, _, stderr := cli(t, "verify", "--repo", url)
	wantFailure(t, code, stderr, 1, "encrypted")
	if n := strings.Count(stderr, "--identity"); n != 1 {
		t.Errorf("the identity hint appears %d times: %s", n, stderr)
	}
	code, _, stderr = cli(t, "verify", "--repo", url, "--identity", key)
	wantFailure(t, code, stderr, 3, "verify found 1 problem: ")
}

// snapshotOnlyRepo is a repository as the agent leaves it right after its
// base snapshot of a new deployment whose oplog is still empty: one
// snapshot, no oplog segment, and (if agent) a fresh heartbeat.
func snapshotOnlyRepo(t *testing.T, agent bool) string {
	ctx := context.Background()
	dir, r := newRepoDir(t)
	now := time.Now().UTC()
	ts := optime.Timestamp{T: uint32(now.Add(-time.Minute).Unix()), I: 1}
	m := repo.Manifest{ID: repo.NewSnapshotID(ts.Time()), Shard: "rs0", Flavor: "mongodb", Start: ts, End: ts,
		Started: ts.Time(), Finished: ts.Time(), FromEmptyOplog: true}
	if err := r.WriteManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if agent {
		hb := repo.Heartbeat{Shard: "rs0", Host: "backup1", PID: 4242, Started: now.Add(-time.Minute), Updated: now}
		if err := r.WriteHeartbeat(ctx, hb); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// status sees what list sees: a shard with a snapshot and no oplog yet is
// listed, its snapshot counted and its agent shown from its heartbeat; it
// warns only what is true (without a live agent, only the snapshot's own
// point is restorable).
func TestStatusSnapshotsWithoutOplog(t *testing.T) {
	for _, agent := range []bool{true, false} {
		dir := snapshotOnlyRepo(t, agent)
		code, out, stderr := cli(t, "status", "--repo", dir, "--json")
		var js struct {
			Shard      string   `json:"shard"`
			Snapshots  int      `json:"snapshots"`
			Restorable bool     `json:"restorable"`
			Warnings   []string `json:"warnings"`
			Agent      *struct {
				Host  string `json:"host"`
				Alive bool   `json:"alive"`
			} `json:"agent"`
			Shards []json.RawMessage `json:"shards"`
		}
		if err := json.Unmarshal([]byte(out), &js); code != 0 || err != nil {
			t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, stderr)
		}
		if js.Shard != "rs0" || len(js.Shards) != 1 || js.Snapshots != 1 || !js.Restorable {
			t.Errorf("agent %v: status --json: %s", agent, out)
		}
		if agent && (js.Agent == nil || !js.Agent.Alive || js.Agent.Host != "backup1" || len(js.Warnings) != 0) {
			t.Errorf("with a live agent: want it shown and no warning: %s", out)
		}
		if !agent && (js.Agent != nil || len(js.Warnings) != 1 || !strings.Contains(js.Warnings[0], "only the snapshots' own points")) {
			t.Errorf("without an agent: want only the no-oplog warning: %s", out)
		}
		code, out, _ = cli(t, "status", "--repo", dir)
		for _, wrong := range []string{"nothing is restorable", "no snapshot", "nothing stored"} {
			if code != 0 || strings.Contains(out, wrong) {
				t.Errorf("agent %v: status says %q:\n%s", agent, wrong, out)
			}
		}
		if !strings.Contains(out, "snapshots     1") || agent != strings.Contains(out, "running on backup1") {
			t.Errorf("agent %v: status:\n%s", agent, out)
		}
		if code, out, _ := cli(t, "list", "--repo", dir); code != 0 || strings.Contains(out, "empty") || !strings.Contains(out, "shard rs0") {
			t.Errorf("list disagrees: exit %d\n%s", code, out)
		}
	}
}

// An agent that runs and has stored nothing yet is shown from its
// heartbeat; nothing is restorable yet, which status says.
func TestStatusAgentBeforeAnything(t *testing.T) {
	ctx := context.Background()
	dir, r := newRepoDir(t)
	now := time.Now().UTC()
	if err := r.WriteHeartbeat(ctx, repo.Heartbeat{Shard: "rs0", Host: "backup1", PID: 7, Started: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "status", "--repo", dir)
	if code != 0 || !strings.Contains(out, "running on backup1") || !strings.Contains(out, "nothing is restorable") ||
		strings.Contains(out, "nothing stored") {
		t.Fatalf("status: exit %d\n%s%s", code, out, stderr)
	}
}
