package retention_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
)

// bigRepo synthesizes a repository of n segments (one every 6 s, keys
// written straight to the file backend as copies of one real segment: a
// listing reads keys, not contents) with a real snapshot every 6 hours.
func bigRepo(b *testing.B, n int) (*sim, time.Time) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(b, start, 1)
	s.hour() // one real segment, to copy
	segs, err := s.r.ListSegments(s.ctx, shard)
	must(b, err)
	dir := strings.TrimPrefix(s.url, "file://")
	body, err := os.ReadFile(filepath.Join(dir, segs[0].Key))
	must(b, err)
	must(b, os.Remove(filepath.Join(dir, segs[0].Key)))
	must(b, os.MkdirAll(filepath.Join(dir, "oplog", shard), 0o755))
	for i := 0; i < n; i++ {
		ts := optime.Timestamp{T: uint32(start.Unix()) + uint32(6*i), I: 1}
		// The real key with other timestamps (and no link to a previous
		// segment, if the format has one).
		parts := strings.Split(strings.TrimPrefix(segs[0].Key, "oplog/"+shard+"/"), "_")
		parts[0], parts[1] = ts.Key(), ts.Key()
		if len(parts) > 3 {
			parts[3] = optime.Zero.Key()
		}
		key := "oplog/" + shard + "/" + strings.Join(parts, "_")
		must(b, os.WriteFile(filepath.Join(dir, key), body, 0o644))
		if i%3600 == 1800 { // every 6 hours
			id := repo.NewSnapshotID(ts.Time())
			ref, err := s.r.WriteChunk(s.ctx, shard, id, "c0", 0, []bson.Raw{doc(i)})
			must(b, err)
			must(b, s.r.WriteManifest(s.ctx, repo.Manifest{ID: id, Shard: shard, Start: ts, End: ts, Started: ts.Time(), Finished: ts.Time(),
				Collections: []repo.CollectionManifest{{DB: "simdb", Name: "c", UUID: "c0", Count: 1, Bytes: ref.Bytes, Chunks: []repo.ChunkRef{ref}}}}))
		}
	}
	return s, start.Add(time.Duration(6*n) * time.Second)
}

// BenchmarkList100k is `rewind list`'s catalog loading on 100,000 segments.
func BenchmarkList100k(b *testing.B) {
	s, _ := bigRepo(b, 100_000)
	b.ResetTimer()
	for b.Loop() {
		cat, err := catalog.Load(context.Background(), s.r)
		must(b, err)
		if len(cat.Shards[0].Timelines[0].Segments) != 100_000 {
			b.Fatalf("%d segments listed", len(cat.Shards[0].Timelines[0].Segments))
		}
	}
}

// BenchmarkPrunePlan100k is prune's planning (listing, manifests, the
// policy, orphans) on 100,000 segments; Decide is the pure part alone.
func BenchmarkPrunePlan100k(b *testing.B) {
	s, now := bigRepo(b, 100_000)
	p := retention.Policy{RestoreWindow: 3 * 24 * time.Hour, Hourly: 6, Daily: 2}
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			res, err := retention.Plan(context.Background(), s.r, p, now)
			must(b, err)
			if len(res.Decisions[0].DropSegments()) == 0 {
				b.Fatal("nothing to prune")
			}
		}
	})
	cat, err := catalog.Load(context.Background(), s.r)
	must(b, err)
	in := retention.Shard{ID: shard, Timelines: cat.Shards[0].Timelines}
	for _, sn := range cat.Shards[0].Snapshots {
		in.Snapshots = append(in.Snapshots, retention.Snapshot{Shard: shard, ID: sn.ID, Start: sn.Start, End: sn.End})
	}
	b.Run("decide", func(b *testing.B) {
		for b.Loop() {
			retention.Decide(p, in, now)
		}
	})
}
