package restore_test

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A cluster snapshot taken with no agent running (`rewind snapshot
// --shard ... --config-server ...` on its own) captures every shard's
// oplog through its time T itself and writes no heartbeat; the cluster is
// still restorable to T, though a shard was idle since well before it,
// and T's state is the one the router left before the snapshot.
func TestClusterSnapshotWithoutAgentRestores(t *testing.T) {
	ctx := context.Background()
	c := startStandIn(t, "alpha", "beta", "idle")
	rt := &router{c: c, rng: rand.New(rand.NewPCG(11, 2)), ids: map[string][]int64{}}
	for range 60 {
		rt.step(ctx, t)
	}
	rec := &oracle.Recorder{Client: c.mirror.Client(), Filter: oracle.Filter{Include: c.dbs}, KeepDocs: true}
	rt.mark(ctx, t, rec) // the clock leaves the second of the idle shard's last write
	rt.avoid = "idle"
	for range 40 {
		rt.step(ctx, t)
	}
	m := rt.mark(ctx, t, rec)
	_, r := c.initRepo(t)
	cm, err := snapshot.TakeCluster(ctx, c.open(t), r, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: 2, Log: testLogger(t)}})
	must(t, err)

	target := testserver.Start(t)
	p, rep, err := restoreCluster(ctx, t, r, target.Client(), restore.Request{To: at(cm.T)})
	if err != nil {
		t.Fatalf("restore the cluster to the T of a snapshot taken without an agent: %v", err)
	}
	if p.Target.Before(cm.T) {
		t.Errorf("latest is %s, before the cluster snapshot's T %s", p.Target, cm.T)
	}
	if err := oracle.Compare(ctx, target.Client(), m, oracle.Filter{Include: c.dbs}); err != nil {
		t.Fatalf("restore to latest (%s): %v", p.Target, err)
	}
	t.Logf("restored to %s (snapshot T %s): %d documents, %d entries", p.Target, cm.T, rep.Documents, rep.Entries)
}
