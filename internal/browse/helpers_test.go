package browse_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// t0 is the snapshot's second in hand-written repositories; entries are
// placed at t0+N seconds.
var t0 = uint32(time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC).Unix())

// written is a repository written by hand at the format's level: one
// timeline whose first segment is the snapshot's copy range (two no-ops at
// t0), a snapshot of the given collections, and the segments added after.
type written struct {
	url  string
	dir  string
	r    *repo.Repository
	tl   string
	prev optime.Timestamp
	segs []repo.SegmentInfo
	snap repo.Manifest
}

// newWritten writes the repository; flavor is recorded with the timeline
// and the snapshot; colls maps "db.coll" to its documents.
func newWritten(t testing.TB, flavor string, colls map[string][]bson.D) *written {
	t.Helper()
	w := newWrittenIn(t, filepath.Join(t.TempDir(), "repo"), flavor, colls)
	t.Cleanup(func() { w.r.Store().Close() })
	return w
}

// newWrittenIn writes the repository in dir, which outlives t.
func newWrittenIn(t testing.TB, dir, flavor string, colls map[string][]bson.D) *written {
	t.Helper()
	ctx := context.Background()
	w := &written{dir: dir, url: "file://" + dir}
	st, err := storage.Open(ctx, w.url)
	must(t, err)
	w.r, err = repo.Init(ctx, st, repo.InitOptions{Location: w.url, Source: repo.Source{Flavor: flavor}})
	must(t, err)
	w.tl = repo.TimelineID(optime.Timestamp{T: t0, I: 1})
	must(t, w.r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: w.tl, Flavor: flavor, Started: time.Unix(int64(t0), 0)}))
	noop := bson.D{{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}}}
	first := w.segment(t, at(0, 1, noop), at(0, 2, noop))
	w.snap = repo.Manifest{ID: "20261120T090000Z-0000abcd", Shard: "rs0", Flavor: flavor, Start: first.First, End: first.Last,
		Started: time.Unix(int64(t0), 0), Finished: time.Unix(int64(t0), 0)}
	n := 0
	for ns, docs := range colls {
		db, coll, _ := strings.Cut(ns, ".")
		cm := repo.CollectionManifest{DB: db, Name: coll, UUID: "c" + string(rune('0'+n))}
		n++
		var raws []bson.Raw
		for _, d := range docs {
			raws = append(raws, marshal(t, d))
		}
		if len(raws) > 0 {
			ref, err := w.r.WriteChunk(ctx, "rs0", w.snap.ID, cm.UUID, 0, raws)
			must(t, err)
			cm.Chunks, cm.Count, cm.Bytes = []repo.ChunkRef{ref}, ref.Count, ref.Bytes
		}
		w.snap.Collections = append(w.snap.Collections, cm)
	}
	must(t, w.r.WriteManifest(ctx, w.snap))
	return w
}

// stamped is an oplog entry with its ts.
type stamped struct {
	ts optime.Timestamp
	e  bson.D
}

// at places entry e at t0+sec, increment inc.
func at(sec, inc uint32, e bson.D) stamped {
	return stamped{optime.Timestamp{T: t0 + sec, I: inc}, e}
}

// segment writes entries as the timeline's next segment (with its index,
// as every writer does).
func (w *written) segment(t testing.TB, es ...stamped) repo.SegmentInfo {
	t.Helper()
	var raws []bson.Raw
	for _, s := range es {
		raws = append(raws, marshal(t, append(bson.D{{Key: "ts", Value: bson.Timestamp{T: s.ts.T, I: s.ts.I}},
			{Key: "t", Value: int64(1)}, {Key: "wall", Value: s.ts.Time()}}, s.e...)))
	}
	seg, err := w.r.WriteSegmentAfter(context.Background(), "rs0", w.tl, w.prev, raws)
	must(t, err)
	w.prev = seg.Last
	w.segs = append(w.segs, seg)
	return seg
}

func command(db string, o bson.D) bson.D {
	return bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: o}}
}

// applyOps is an applyOps entry of ops; with a txnNumber it belongs to a
// transaction (it gets an lsid).
func applyOps(txnNumber int64, ops ...bson.D) bson.D {
	arr := bson.A{}
	for _, o := range ops {
		arr = append(arr, o)
	}
	e := bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "applyOps", Value: arr}}}}
	if txnNumber > 0 {
		e = append(e, bson.E{Key: "lsid", Value: bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}},
			bson.E{Key: "txnNumber", Value: txnNumber})
	}
	return e
}

// counting is a store that counts the Gets of keys by prefix, to prove
// what a reader reads.
type counting struct {
	storage.Store
	mu   sync.Mutex
	gets map[string]int // by the key's first path component
}

func (c *counting) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	c.mu.Lock()
	prefix, _, _ := strings.Cut(key, "/")
	c.gets[prefix]++
	c.mu.Unlock()
	return c.Store.Get(ctx, key)
}

func (c *counting) reset() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.gets
	c.gets = map[string]int{}
	return g
}

// counted opens w's repository again over a counting store.
func (w *written) counted(t testing.TB) (*repo.Repository, *counting) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, w.url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	c := &counting{Store: st, gets: map[string]int{}}
	r, err := repo.Open(ctx, c, repo.OpenOptions{Location: w.url})
	must(t, err)
	return r, c
}

func marshal(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func timeOf(sec uint32) string {
	return time.Unix(int64(t0+sec), 0).UTC().Format(time.RFC3339)
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }
