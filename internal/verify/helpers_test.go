package verify_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// fixture is a small repository on the file backend: one timeline of
// hourly segments and a snapshot every twelve hours.
type fixture struct {
	dir, url string
	store    storage.Store
	r        *repo.Repository
	segs     []repo.SegmentInfo
	snaps    []repo.Manifest
}

var t0 = time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

func newFixture(t testing.TB, hours int) *fixture {
	ctx := context.Background()
	dir := t.TempDir()
	f := &fixture{dir: dir, url: "file://" + dir}
	var err error
	if f.store, err = storage.Open(ctx, f.url); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.store.Close() })
	if f.r, err = repo.Init(ctx, f.store, repo.InitOptions{Location: f.url}); err != nil {
		t.Fatal(err)
	}
	tl := "a1b2c3d4e5f60718"
	must(t, f.r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: tl, Flavor: "mongodb", Started: t0}))
	n := 0
	for h := 0; h < hours; h++ {
		var es []bson.Raw
		for k := 0; k < 4; k++ {
			ts := optime.Timestamp{T: uint32(t0.Add(time.Duration(h)*time.Hour + time.Duration(k)*15*time.Minute).Unix()), I: 1}
			es = append(es, entry(ts, n))
			n++
		}
		var prev optime.Timestamp
		if len(f.segs) > 0 {
			prev = f.segs[len(f.segs)-1].Last
		}
		s, err := f.r.WriteSegmentAfter(ctx, "rs0", tl, prev, es)
		must(t, err)
		f.segs = append(f.segs, s)
		if h%12 == 1 {
			f.snaps = append(f.snaps, f.snapshot(t, n, s))
		}
	}
	return f
}

// snapshot copies documents 0..n-1; its copy range is the last segment.
func (f *fixture) snapshot(t testing.TB, n int, last repo.SegmentInfo) repo.Manifest {
	id := fmt.Sprintf("%s-%08x", last.First.Time().Format("20060102T150405Z"), n)
	var chunks []repo.ChunkRef
	var count, size int64
	for c := 0; c*10 < n; c++ {
		var docs []bson.Raw
		for i := c * 10; i < min(n, c*10+10); i++ {
			docs = append(docs, doc(i))
		}
		ref, err := f.r.WriteChunk(context.Background(), "rs0", id, "c0", c, docs)
		must(t, err)
		chunks = append(chunks, ref)
		count, size = count+ref.Count, size+ref.Bytes
	}
	m := repo.Manifest{ID: id, Shard: "rs0", Flavor: "mongodb", Start: last.First, End: last.Last, Started: t0, Finished: t0,
		Collections: []repo.CollectionManifest{{DB: "d", Name: "c", UUID: "c0", Count: count, Bytes: size, Chunks: chunks}}}
	must(t, f.r.WriteManifest(context.Background(), m))
	return m
}

func entry(ts optime.Timestamp, n int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}, {Key: "t", Value: int64(1)},
		{Key: "op", Value: "i"}, {Key: "ns", Value: "d.c"}, {Key: "o", Value: doc(n)}})
	return raw
}

func doc(n int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(n)}, {Key: "v", Value: fmt.Sprintf("document %d", n)}})
	return raw
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
