package retention

import (
	"reflect"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
)

// The parts of a kept cluster snapshot are kept together: shard s1 keeps
// its part of c1 only because s0 keeps its own (daily 2 of 2), and s0
// keeps its oplog through c1's T, past its part's own end. c0, which no
// shard keeps, loses its cluster manifest.
func TestDecideClusters(t *testing.T) {
	p := Policy{RestoreWindow: 24 * time.Hour, Daily: 2}
	now := epoch.Add(240 * time.Hour)
	snap := func(shard, id string, start, end float64) Snapshot {
		return Snapshot{Shard: shard, ID: id, Start: at(start), End: at(end)}
	}
	shards := []Shard{
		{ID: "s0", Timelines: []repo.Timeline{hourly("tl-a", 0, 240)},
			Snapshots: []Snapshot{snap("s0", "c0", 1, 1.1), snap("s0", "c1", 25, 25.1), snap("s0", "y", 210, 210.1)}},
		{ID: "s1", Timelines: []repo.Timeline{hourly("tl-b", 0, 240)},
			Snapshots: []Snapshot{snap("s1", "c0", 1, 1.2), snap("s1", "c1", 25, 27.5), snap("s1", "w", 125, 125.1), snap("s1", "x", 200, 200.1)}},
	}
	part := func(shard string, start, end, t float64) repo.ClusterPart {
		return repo.ClusterPart{Shard: shard, Start: at(start), End: at(end), CoveredThrough: at(t)}
	}
	clusters := []repo.ClusterManifest{
		{ID: "c0", T: at(1.2), Parts: []repo.ClusterPart{part("s0", 1, 1.1, 1.2), part("s1", 1, 1.2, 1.2)}},
		{ID: "c1", T: at(27.5), Parts: []repo.ClusterPart{part("s0", 25, 25.1, 27.5), part("s1", 25, 27.5, 27.5)}},
	}
	// Without the clusters, s1 would drop its part of c1.
	if got := kept(Decide(p, shards[1], now)); !reflect.DeepEqual(got, []string{"w", "x"}) {
		t.Fatalf("s1 alone keeps %v, want [w x]", got)
	}
	decisions, drop := decideClusters(p, shards, clusters, now)
	if got := kept(decisions[0]); !reflect.DeepEqual(got, []string{"c1", "y"}) {
		t.Errorf("s0 keeps %v, want [c1 y]", got)
	}
	if got := kept(decisions[1]); !reflect.DeepEqual(got, []string{"c1", "w", "x"}) {
		t.Errorf("s1 keeps %v, want [c1 w x] (c1's part kept with s0's)", got)
	}
	if !reflect.DeepEqual(drop, []string{"c0"}) {
		t.Errorf("cluster manifests dropped %v, want [c0]", drop)
	}
	// s0's oplog stays through c1's T (hour 27), not only through its
	// part's end (hour 25): copied out to a timeline of its own.
	var hoursKept []string
	for _, ex := range decisions[0].Extracts {
		for _, seg := range ex.Segments {
			hoursKept = append(hoursKept, hours(seg.First))
		}
	}
	if !reflect.DeepEqual(hoursKept, []string{"25", "26", "27"}) {
		t.Errorf("s0 extracts the segments of hours %v, want [25 26 27]", hoursKept)
	}
}
