package verify_test

import (
	"context"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
)

// A cluster manifest whose parts are all stored is healthy; one that
// names a part not in the repository is a problem naming that part.
func TestClusterManifestParts(t *testing.T) {
	f := newFixture(t, 30)
	s := f.snaps[0]
	part := repo.ClusterPart{Shard: s.Shard, Start: s.Start, End: s.End, CoveredThrough: s.End}
	m := repo.ClusterManifest{ID: s.ID, T: s.End, Parts: []repo.ClusterPart{part}, Balancer: repo.BalancerUnknown}
	if err := f.r.WriteClusterManifest(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if rep := run(t, f, false); !rep.Healthy() || len(rep.Findings) != 0 {
		t.Fatalf("a whole cluster snapshot: findings %+v", rep.Findings)
	}
	// A part deleted after the manifest was written (by hand: prune
	// never does) breaks the cluster snapshot.
	if err := f.r.DeleteSnapshot(context.Background(), s.Shard, s.ID); err != nil {
		t.Fatal(err)
	}
	rep := run(t, f, false)
	found := false
	for _, p := range rep.Problems() {
		if p.Kind == "missing" && p.Object == "snapshots/"+s.Shard+"/"+s.ID && strings.Contains(p.Message, "cluster snapshot "+s.ID) {
			found = true
		}
	}
	if !found {
		t.Fatalf("a cluster snapshot's missing part is not reported: %+v", rep.Findings)
	}
}
