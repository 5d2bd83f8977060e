package agent_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A brand-new deployment, whose oplog is still empty: the agent started
// with its defaults takes a base snapshot by itself, a snapshot by hand
// before any write works too, and after writes every second since is
// restorable, exactly.
func TestNewDeploymentAgentThenSnapshot(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("needs an empty oplog: a real replica set's never is (replSetInitiate logs an entry)")
	}
	ctx := context.Background()
	if ts, err := oracle.LastOplogTS(ctx, srv.Client()); err == nil {
		t.Fatalf("the new test server's oplog already holds %s", ts)
	}
	url := newRepo(t)
	a := startAgent(t, agentConfig(t, srv, url)) // snapshot.every: its default
	r := openRepo(t, url)
	waitFor(t, time.Minute, "the agent's base snapshot", func() bool {
		refs, err := r.ListSnapshots(ctx, "")
		return err == nil && len(refs) == 1
	})

	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	defer src.Close(ctx)
	m, err := snapshot.Take(ctx, src, r, snapshot.Options{WaitTimeout: time.Minute, Log: testLogger(t)})
	if err != nil {
		t.Fatalf("a snapshot of a new deployment before any write: %v", err)
	}
	if !m.FromEmptyOplog || m.Start != m.End {
		t.Fatalf("snapshot of an empty oplog: from_empty_oplog %v, start %s, end %s; want an anchored point", m.FromEmptyOplog, m.Start, m.End)
	}

	// Plain writes (collections made by their first insert): FerretDB logs
	// no DDL, so a secondary index created after the snapshot could not be
	// restored from its oplog (a real server's could).
	writeSome(t, srv, srv.DB("w"))
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, time.Minute)
	assertRestorable(t, r, m.ID, newest)
	restoreAndCompare(t, srv, url, srv.DB("w"))
}

// The agent alone, with its defaults, on a deployment with data and no
// snapshot: it takes a base snapshot, so the oplog it captures restores.
func TestAgentAloneProducesRestorePoints(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	runWorkload(t, srv, 32, 100, "a")
	url := newRepo(t)
	a := startAgent(t, agentConfig(t, srv, url))
	r := openRepo(t, url)
	waitFor(t, time.Minute, "the agent's base snapshot", func() bool {
		refs, err := r.ListSnapshots(ctx, "")
		return err == nil && len(refs) == 1
	})
	writeSome(t, srv, srv.DB("a")+"x")
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, time.Minute)
	refs, err := r.ListSnapshots(ctx, "")
	must(t, err)
	assertRestorable(t, r, refs[0].ID, newest)
	restoreAndCompare(t, srv, url, srv.DB("a"))
}

// With snapshot.every 0 the agent takes no snapshot at all, as documented.
func TestAgentEveryZeroTakesNoSnapshot(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	runWorkload(t, srv, 34, 30, "z")
	url := newRepo(t)
	cfg := agentConfig(t, srv, url)
	cfg.Snapshot.Every = 0
	a := startAgent(t, cfg)
	runWorkload(t, srv, 35, 30, "z")
	waitDurable(t, a.Stats().LastDurable, newestOplogTS(t, srv.Client()), time.Minute)
	refs, err := openRepo(t, url).ListSnapshots(ctx, "")
	must(t, err)
	if len(refs) != 0 {
		t.Fatalf("snapshot.every 0: the agent took %d snapshots", len(refs))
	}
}

// writeSome inserts, updates and deletes documents in two collections of
// database db.
func writeSome(t *testing.T, srv *testserver.Server, db string) {
	t.Helper()
	ctx := context.Background()
	for _, name := range []string{"orders", "users"} {
		coll := srv.Client().Database(db).Collection(name)
		for i := range 40 {
			doc := bson.D{{Key: "_id", Value: i}, {Key: "name", Value: name}, {Key: "n", Value: int64(i * i)},
				{Key: "tags", Value: bson.A{"a", i}}, {Key: "at", Value: time.Unix(1795900000+int64(i), 0).UTC()}}
			_, err := coll.InsertOne(ctx, doc)
			must(t, err)
		}
		_, err := coll.UpdateMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$lt", Value: 10}}}},
			bson.D{{Key: "$set", Value: bson.D{{Key: "state", Value: "done"}}}, {Key: "$unset", Value: bson.D{{Key: "tags", Value: ""}}}})
		must(t, err)
		_, err = coll.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$gte", Value: 35}}}})
		must(t, err)
	}
}

// assertRestorable checks that snapshot id opens a restore window that
// reaches ts.
func assertRestorable(t *testing.T, r *repo.Repository, id string, ts optime.Timestamp) {
	t.Helper()
	cat, err := catalog.Load(context.Background(), r)
	must(t, err)
	for _, sh := range cat.Shards {
		for _, w := range sh.Windows {
			if w.Snapshot == id && w.Contains(ts) {
				return
			}
		}
	}
	t.Fatalf("no restore window of snapshot %s holds %s: %+v", id, ts, cat.Shards)
}

// restoreAndCompare restores the newest point of the repository with the
// rewind command into another deployment, under new names, and compares
// every database with the prefix to the source, document by document.
func restoreAndCompare(t *testing.T, srv *testserver.Server, url, prefix string) {
	t.Helper()
	ctx := context.Background()
	target := testserver.Start(t)
	names, err := srv.Client().ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^" + prefix}}}})
	must(t, err)
	if len(names) == 0 {
		t.Fatal("the workload wrote no database")
	}
	args := []string{"restore", "--repo", url, "--target", target.URI(), "--to", "latest"}
	f := oracle.Filter{Rename: map[string]string{}}
	for i, db := range names {
		to := target.DB("r" + string(rune('a'+i)))
		args = append(args, "--ns", db, "--rename", db+"="+to)
		f.Include = append(f.Include, db)
		f.Rename[db] = to
	}
	out, err := exec.Command(testbin.Rewind(t), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rewind restore: %v\n%s", err, out)
	}
	want, err := oracle.Snapshot(ctx, srv.Client(), oracle.Filter{Include: f.Include})
	must(t, err)
	if err := oracle.Compare(ctx, target.Client(), oracle.Mark{State: want}, f); err != nil {
		t.Fatalf("restored state differs from the source: %v\nrestore said:\n%s", err, out)
	}
	if !strings.Contains(string(out), "Restored from snapshot") {
		t.Fatalf("rewind restore printed no report:\n%s", out)
	}
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The other order on a new deployment: a snapshot by hand before any agent
// runs (it captures its own, empty, range), then the agent. The agent's
// timeline, read from the oplog's first entry, replays over that snapshot,
// so the agent needs no base snapshot of its own, and every later second is
// restorable.
func TestNewDeploymentSnapshotThenAgent(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("needs an empty oplog: a real replica set's never is (replSetInitiate logs an entry)")
	}
	ctx := context.Background()
	url := newRepo(t)
	r := openRepo(t, url)
	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	defer src.Close(ctx)
	m, err := snapshot.Take(ctx, src, r, snapshot.Options{Log: testLogger(t)})
	if err != nil {
		t.Fatalf("a snapshot of a new deployment with no agent: %v", err)
	}
	if !m.FromEmptyOplog {
		t.Fatalf("the snapshot of an empty oplog is not marked from_empty_oplog: %+v", m)
	}
	a := startAgent(t, agentConfig(t, srv, url))
	// The agent decides where capture starts before its first heartbeat.
	waitFor(t, 30*time.Second, "the agent's first heartbeat", func() bool {
		_, err := r.ReadHeartbeat(ctx, src.Shard())
		return err == nil
	})
	writeSome(t, srv, srv.DB("n"))
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, time.Minute)
	assertRestorable(t, r, m.ID, newest)
	refs, err := r.ListSnapshots(ctx, "")
	must(t, err)
	if len(refs) != 1 {
		t.Fatalf("%d snapshots; want only the one by hand (the agent needs no base of its own)", len(refs))
	}
	restoreAndCompare(t, srv, url, srv.DB("n"))
}
