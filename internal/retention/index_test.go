package retention_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
)

// TestPruneKeepsIndexesWithTheirSegments: after prunes that copy tier
// snapshots' oplog to timelines of their own and delete the rest, every
// listed segment still has its index, equal to what its entries give, and
// no index is left without its segment.
func TestPruneKeepsIndexesWithTheirSegments(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 2)
	p := retention.Policy{RestoreWindow: 48 * time.Hour, Daily: 5}
	lock, err := s.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
	must(t, err)
	defer lock.Unlock(context.Background())
	copied, deleted := 0, 0
	for day := 1; day <= 6; day++ {
		for h := 0; h < 24; h++ {
			s.hour()
			if h%12 == 11 {
				s.snapshot()
			}
		}
		res, err := retention.Prune(s.ctx, s.r, lock, p, s.now, quiet)
		must(t, err)
		copied, deleted = copied+res.CopiedSegments, deleted+res.DeletedSegments
	}
	if copied == 0 || deleted == 0 {
		t.Fatalf("the prunes copied %d and deleted %d segments: the test needs both", copied, deleted)
	}
	checkIndexes(t, s)
}

// checkIndexes checks every listed segment's index against its entries and
// that every index belongs to a listed segment.
func checkIndexes(t *testing.T, s *sim) {
	t.Helper()
	segs, err := s.r.ListSegments(s.ctx, shard)
	must(t, err)
	listed := map[string]bool{}
	for _, seg := range segs {
		listed[seg.Key] = true
		es, err := s.r.ReadSegment(s.ctx, seg)
		must(t, err)
		if err := s.r.CheckIndex(s.ctx, seg, es); err != nil {
			t.Errorf("segment %s (timeline %s): %v", seg.Key, seg.Timeline, err)
		}
	}
	must(t, s.store.List(s.ctx, "oplog-index/", func(i storage.Info) error {
		if seg, _ := repo.SegmentKeyOfIndex(i.Key); !listed[seg] {
			t.Errorf("index %s has no listed segment", i.Key)
		}
		return nil
	}))
}

// TestIndexOrphans: an index whose segment is gone (a delete interrupted
// between the two) is removed once older than the grace period; the
// indexes of listed segments, and a fresh orphan, stay.
func TestIndexOrphans(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 2)
	for h := 0; h < 4; h++ {
		s.hour()
	}
	s.snapshot()
	segs, err := s.r.ListSegments(s.ctx, shard)
	must(t, err)
	// Interrupted compaction of the first two: the merged segment written,
	// the small ones deleted but not their indexes. The merged segment
	// starts where the first did, so the first's index is the old one.
	es0, err := s.r.ReadSegment(s.ctx, segs[0])
	must(t, err)
	es1, err := s.r.ReadSegment(s.ctx, segs[1])
	must(t, err)
	merged, err := s.r.WriteSegmentAfter(s.ctx, shard, s.tl, segs[0].Prev, append(es0, es1...))
	must(t, err)
	dir := strings.TrimPrefix(s.url, "file://")
	for i, seg := range segs[:2] {
		must(t, s.store.Delete(s.ctx, seg.Key))
		if i == 0 {
			must(t, os.Chtimes(filepath.Join(dir, repo.IndexKey(seg.Key)), s.now.Add(-48*time.Hour), s.now.Add(-48*time.Hour)))
		}
	}
	lock, err := s.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
	must(t, err)
	defer lock.Unlock(s.ctx)
	res, err := retention.Prune(s.ctx, s.r, lock, retention.Policy{RestoreWindow: 7 * 24 * time.Hour}, s.now, quiet)
	must(t, err)
	if res.DeletedOrphans != 1 || res.Orphans[0].Key != repo.IndexKey(segs[0].Key) {
		t.Fatalf("orphans %+v, want the old index of %s", res.Orphans, segs[0].Key)
	}
	for key, want := range map[string]bool{repo.IndexKey(segs[0].Key): false, repo.IndexKey(segs[1].Key): true,
		repo.IndexKey(merged.Key): true, repo.IndexKey(segs[2].Key): true} {
		if _, err := s.store.Stat(s.ctx, key); (err == nil) != want {
			t.Errorf("%s: exists=%v after prune, want %v", key, err == nil, want)
		}
	}
}
