package retention_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
)

// TestOrphans: chunks without a manifest and segments hidden inside a
// bigger one are removed once older than the grace period; a running
// snapshot's fresh chunks are left alone.
func TestOrphans(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 2)
	for h := 0; h < 6; h++ {
		s.hour()
	}
	s.snapshot()
	dir := strings.TrimPrefix(s.url, "file://")
	old, err := s.r.WriteChunk(s.ctx, shard, "20261001T000000Z-deadbeef", "c0", 0, []bson.Raw{doc(1)})
	must(t, err)
	fresh, err := s.r.WriteChunk(s.ctx, shard, "20261001T050000Z-0badf00d", "c0", 0, []bson.Raw{doc(2)})
	must(t, err)
	segs, err := s.r.ListSegments(s.ctx, shard)
	must(t, err)
	es, err := s.r.ReadSegment(s.ctx, segs[0])
	must(t, err)
	merged, err := s.r.CompactSegments(s.ctx, segs[:3])
	must(t, err)
	// An interrupted compaction: one small segment left behind.
	leftover, err := s.r.WriteSegment(s.ctx, shard, s.tl, es)
	must(t, err)
	// The record of an extract whose segments are all gone.
	must(t, s.r.WriteTimeline(s.ctx, repo.TimelineInfo{Shard: shard, ID: s.tl + ".deadbeef", Flavor: "mongodb"}))
	record := "timelines/" + shard + "/" + s.tl + ".deadbeef"
	now := s.now // the simulated clock; the fresh chunk's real mtime is after it
	for _, k := range []string{old.Key, leftover.Key, record} {
		must(t, os.Chtimes(filepath.Join(dir, k), now.Add(-48*time.Hour), now.Add(-48*time.Hour)))
	}
	lock, err := s.r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "test"})
	must(t, err)
	defer lock.Unlock(s.ctx)
	res, err := retention.Prune(s.ctx, s.r, lock, retention.Policy{RestoreWindow: 7 * 24 * time.Hour}, now, quiet)
	must(t, err)
	if res.DeletedOrphans != 3 {
		t.Fatalf("deleted %d orphans, want 3: %+v", res.DeletedOrphans, res.Orphans)
	}
	for key, want := range map[string]bool{old.Key: false, leftover.Key: false, record: false, fresh.Key: true, merged.Key: true,
		"timelines/" + shard + "/" + s.tl: true} {
		_, err := s.store.Stat(s.ctx, key)
		if (err == nil) != want {
			t.Errorf("%s: exists=%v after prune, want %v", key, err == nil, want)
		}
	}
}
