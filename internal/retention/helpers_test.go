package retention_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
)

const shard = "rs0"

// sim writes a synthetic capture at the repository level on a simulated
// clock: one segment per simulated hour, each holding inserts of documents
// {_id: n, v: n} with n counting up, and snapshots holding every document
// inserted so far. The model (ts of document n) tells exactly what any
// restore point must contain.
type sim struct {
	t     testing.TB
	ctx   context.Context
	url   string
	store storage.Store
	r     *repo.Repository
	now   time.Time
	tl    string
	ts    []optime.Timestamp // ts[n] is when document n was inserted
	perH  int                // entries per simulated hour
	prev  optime.Timestamp   // last entry of the timeline's previous segment
}

func newSim(t testing.TB, start time.Time, perHour int) *sim {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Now: func() time.Time { return start }})
	if err != nil {
		t.Fatal(err)
	}
	s := &sim{t: t, ctx: ctx, url: url, store: st, r: r, now: start, tl: repo.NewTimelineID(), perH: perHour}
	s.newTimeline()
	return s
}

func (s *sim) newTimeline() {
	s.tl, s.prev = repo.NewTimelineID(), optime.Zero
	must(s.t, s.r.WriteTimeline(s.ctx, repo.TimelineInfo{Shard: shard, ID: s.tl, Flavor: "mongodb", Started: s.now}))
}

func entry(ts optime.Timestamp, n int) bson.Raw {
	raw, err := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}, {Key: "t", Value: int64(1)},
		{Key: "op", Value: "i"}, {Key: "ns", Value: "simdb.c"}, {Key: "o", Value: doc(n)}})
	if err != nil {
		panic(err)
	}
	return raw
}

func doc(n int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: int64(n)}, {Key: "v", Value: fmt.Sprintf("document %d", n)}})
	return raw
}

// hour writes one segment of perH entries spread over the hour and moves
// the clock on by an hour.
func (s *sim) hour() {
	var es []bson.Raw
	for k := 0; k < s.perH; k++ {
		ts := optime.Timestamp{T: uint32(s.now.Add(time.Duration(k) * time.Hour / time.Duration(s.perH)).Unix()), I: 1}
		es = append(es, entry(ts, len(s.ts)))
		s.ts = append(s.ts, ts)
	}
	// Linked to the previous segment of the timeline, as the agent writes.
	if _, err := s.r.WriteSegmentAfter(s.ctx, shard, s.tl, s.prev, es); err != nil {
		s.t.Fatal(err)
	}
	s.prev = s.ts[len(s.ts)-1]
	s.now = s.now.Add(time.Hour)
}

// snapshot stores every document so far; its copy range is the last two
// entries, so replay from its start re-applies them (idempotently).
func (s *sim) snapshot() repo.Manifest {
	n := len(s.ts)
	id := repo.NewSnapshotID(s.now)
	var docs []bson.Raw
	for i := 0; i < n; i++ {
		docs = append(docs, doc(i))
	}
	var chunks []repo.ChunkRef
	var count, size int64
	for c := 0; len(docs) > 0; c++ {
		part := docs[:min(len(docs), 1000)]
		docs = docs[len(part):]
		ref, err := s.r.WriteChunk(s.ctx, shard, id, "c0", c, part)
		must(s.t, err)
		chunks = append(chunks, ref)
		count, size = count+ref.Count, size+ref.Bytes
	}
	m := repo.Manifest{ID: id, Shard: shard, Flavor: "mongodb", Start: s.ts[n-2], End: s.ts[n-1], Started: s.now, Finished: s.now,
		Collections: []repo.CollectionManifest{{DB: "simdb", Name: "c", UUID: "c0", Count: count, Bytes: size, Chunks: chunks}}}
	must(s.t, s.r.WriteManifest(s.ctx, m))
	return m
}

// want is how many documents restore point p holds: those inserted at or
// before it (they are numbered in insert order).
func (s *sim) want(p optime.Timestamp) int {
	return sort.Search(len(s.ts), func(i int) bool { return s.ts[i].After(p) })
}

// storedBytes sums the size of every object under prefix.
func (s *sim) storedBytes(prefix string) int64 {
	var n int64
	must(s.t, s.store.List(s.ctx, prefix, func(i storage.Info) error { n += i.Size; return nil }))
	return n
}

// catalog lists the repository as a restore would.
func (s *sim) catalog() catalog.Catalog {
	cat, err := catalog.Load(s.ctx, s.r)
	must(s.t, err)
	return cat
}

func planFor(cat catalog.Catalog, p optime.Timestamp) (restore.Plan, error) {
	return restore.Build(cat, restore.Request{To: restore.When{TS: p}})
}

// checkStructure checks from a listing alone that p is restorable: a plan
// exists and its segments hold every entry from the snapshot's start to p
// with no hole (the model knows every entry's ts).
func (s *sim) checkStructure(cat catalog.Catalog, p optime.Timestamp) error {
	plan, err := planFor(cat, p)
	if err != nil {
		return err
	}
	next := s.want(plan.ReplayFrom) - 1 // index of the first entry to replay
	if next < 0 || s.ts[next] != plan.ReplayFrom {
		next++
	}
	stop := s.want(p) // entries [next, stop) must be replayed
	for _, seg := range plan.Segments {
		if next >= stop {
			break
		}
		if seg.First.After(s.ts[next]) {
			return fmt.Errorf("restore point %s: entry %d (%s) is in no segment: a hole before %s", p, next, s.ts[next], seg.Key)
		}
		for next < stop && !s.ts[next].After(seg.Last) {
			next++
		}
	}
	if next < stop {
		return fmt.Errorf("restore point %s: entries from %s on are missing", p, s.ts[next])
	}
	for _, c := range plan.Collections {
		for _, ch := range c.Manifest.Chunks {
			if _, err := s.store.Stat(s.ctx, ch.Key); err != nil {
				return fmt.Errorf("restore point %s: %w", p, err)
			}
		}
	}
	return nil
}

// checkData reads everything a restore to p reads and checks the result
// holds exactly the documents the model says.
func (s *sim) checkData(cat catalog.Catalog, p optime.Timestamp) error {
	plan, err := planFor(cat, p)
	if err != nil {
		return err
	}
	ids := map[int64]bool{}
	for _, c := range plan.Collections {
		for _, ch := range c.Manifest.Chunks {
			docs, err := s.r.ReadChunk(s.ctx, ch)
			if err != nil {
				return err
			}
			for _, d := range docs {
				ids[d.Lookup("_id").Int64()] = true
			}
		}
	}
	for _, seg := range plan.Segments {
		es, err := s.r.ReadSegment(s.ctx, seg)
		if err != nil {
			return err
		}
		for _, e := range es {
			t, i := e.Lookup("ts").Timestamp()
			if ts := (optime.Timestamp{T: t, I: i}); !ts.Before(plan.ReplayFrom) && !ts.After(p) {
				ids[e.Lookup("o", "_id").Int64()] = true
			}
		}
	}
	want := s.want(p)
	if len(ids) != want {
		return fmt.Errorf("restore point %s: %d documents, want %d", p, len(ids), want)
	}
	for id := range ids {
		if id >= int64(want) {
			return fmt.Errorf("restore point %s: holds document %d inserted after it", p, id)
		}
	}
	return nil
}

// promisedPoints lists the first and last point of every promise.
func promisedPoints(res retention.Result) []optime.Timestamp {
	var out []optime.Timestamp
	for _, d := range res.Decisions {
		for _, p := range d.Promises {
			out = append(out, p.From)
			if p.To != p.From {
				out = append(out, p.To)
			}
		}
	}
	return out
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
