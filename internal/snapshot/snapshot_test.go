package snapshot_test

import (
	"context"
	"testing"

	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A snapshot of a quiescent state holds exactly the source's documents,
// with their indexes and options, and its oplog range is in the repository.
func TestQuiescentSnapshot(t *testing.T) {
	e := newEnv(t)
	cfg := e.workload(1, 400, "q", func(c *workload.Config) { c.LargeEvery = 25 })
	ctx := context.Background()

	m, err := e.take(snapshot.Options{Parallel: 3, ChunkBytes: 256 << 10})
	must(t, err)
	if m.End.Before(m.Start) {
		t.Fatalf("end %s before start %s", m.End, m.Start)
	}
	got := byName(m)
	for _, ns := range workload.Namespaces(cfg) {
		cm, ok := got[ns.String()]
		if !ok {
			t.Fatalf("manifest lacks %s; has %v", ns, keys(got))
		}
		assertSameDocs(t, ns.String(), snapshotDocs(t, e.repo, cm), sourceDocs(t, e.srv.Client(), ns.DB, ns.Coll))
		if len(cm.Indexes) == 0 {
			t.Errorf("%s: no indexes recorded", ns)
		}
	}
	if len(got) != len(workload.Namespaces(cfg)) {
		t.Errorf("manifest has %d collections, the workload wrote %d: %v", len(got), len(workload.Namespaces(cfg)), keys(got))
	}
	snaps, err := e.repo.ListSnapshots(ctx, m.Shard)
	must(t, err)
	if len(snaps) != 1 || snaps[0].ID != m.ID {
		t.Fatalf("ListSnapshots = %v, want only %s", snaps, m.ID)
	}
	back, err := e.repo.ReadManifest(ctx, m.Shard, m.ID)
	must(t, err)
	if back.Start != m.Start || back.End != m.End || len(back.Collections) != len(m.Collections) {
		t.Fatalf("manifest read back differs: %+v", back)
	}
	assertCovered(t, e, m.Shard, m.Start, m.End)
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
