package restore_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// planShard is a shard with one snapshot ending at end, one timeline from
// start to last, and a heartbeat covered through covered.
func planShard(id string, end, last, covered uint32, coll string) catalog.Shard {
	snap := catalog.NewSnapshot(repo.Manifest{ID: "snap-" + id, Shard: id, Start: ts(end - 1), End: ts(end),
		Collections: []repo.CollectionManifest{{DB: "app", Name: coll, Count: 2,
			Chunks: []repo.ChunkRef{{Key: "data/" + id, Count: 2}}}}})
	seg := repo.SegmentInfo{Shard: id, Timeline: "tl-" + id, First: ts(end - 1), Last: ts(last), Size: 10}
	tl := repo.Timeline{ID: "tl-" + id, First: ts(end - 1), Last: ts(last), Segments: []repo.SegmentInfo{seg}}
	sh := catalog.Shard{ID: id, Timelines: []repo.Timeline{tl}, Snapshots: []catalog.Snapshot{snap},
		Windows: []catalog.Window{{Shard: id, Snapshot: snap.ID, Timeline: tl.ID, From: ts(end), To: ts(last)}}}
	sh.Covered = ts(covered)
	return sh
}

func ts(t uint32) optime.Timestamp { return optime.Timestamp{T: t, I: 1} }

// A cluster plan goes to one time on every shard: the cluster windows are
// the intersection of the shards' windows, each reaching its
// covered-through time (an idle shard's last entry is long before it); a
// namespace on several shards is one collection with every shard's chunks;
// a point after the least covered-through time names the shard that holds
// the cluster back, and one before a shard's snapshot names that shard.
func TestBuildCluster(t *testing.T) {
	cat := catalog.Catalog{Cluster: []string{"a", "b", "idle"}, Shards: []catalog.Shard{
		planShard("a", 100, 200, 210, "orders"),
		planShard("b", 120, 190, 205, "orders"),
		planShard("idle", 50, 60, 230, "users"),
	}}
	ws := cat.ClusterWindows()
	if len(ws) != 1 || ws[0].From != ts(120) || ws[0].To != ts(205) {
		t.Fatalf("cluster windows %+v, want one from %s to %s (b's covered-through)", ws, ts(120), ts(205))
	}
	p, err := restore.Build(cat, restore.Request{To: restore.When{TS: ts(195)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Parts) != 3 || p.Target != ts(195) {
		t.Fatalf("planned %d parts to %s, want 3 to %s", len(p.Parts), p.Target, ts(195))
	}
	if len(p.Collections) != 2 || p.Collections[0].Source.Coll != "orders" || len(p.Collections[0].Manifest.Chunks) != 2 || p.Documents != 6 {
		t.Fatalf("merged collections %+v (%d documents), want orders with both shards' chunks and users", p.Collections, p.Documents)
	}
	latest, err := restore.Build(cat, restore.Request{To: restore.When{Latest: true}})
	if err != nil || latest.Target != ts(205) {
		t.Fatalf("latest: target %s, err %v; want %s", latest.Target, err, ts(205))
	}

	_, err = restore.Build(cat, restore.Request{To: restore.When{TS: ts(206)}})
	if !errors.Is(err, restore.ErrOutsideWindows) || !strings.Contains(err.Error(), "shard b's oplog") {
		t.Fatalf("a point after the least covered-through time: got %v, want it to name shard b", err)
	}
	_, err = restore.Build(cat, restore.Request{To: restore.When{TS: ts(110)}})
	if !errors.Is(err, restore.ErrOutsideWindows) || !strings.HasPrefix(err.Error(), "shard b: ") {
		t.Fatalf("a point before shard b's snapshot: got %v, want it to name shard b", err)
	}
	cat.Shards = cat.Shards[:2]
	_, err = restore.Build(cat, restore.Request{To: restore.When{TS: ts(150)}})
	if !errors.Is(err, restore.ErrOutsideWindows) || !strings.Contains(err.Error(), "shard idle") {
		t.Fatalf("a shard with no window: got %v, want it named", err)
	}
}
