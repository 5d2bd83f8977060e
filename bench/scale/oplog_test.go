package scalebench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// segmentEntries is how many entries each synthetic segment holds: a
// capture flushes every 0.5 s (capture.flush_interval), so 1,000 is a
// busy source's segment (2,000 writes/s).
const segmentEntries = 1000

// perSecond is how many synthetic entries share one oplog second (the
// increment counts them), so 10^6 entries span 100 s after the snapshot.
const perSecond = 10_000

// oplogGrower appends synthetic insert entries to a repository's oplog,
// after the last segment the snapshot's own range capture wrote, with the
// repository package's own writer (WriteSegmentAfter: segment and index,
// as the agent stores them). The server is taken out: no entry goes
// through FerretDB, so 10^6 entries take seconds, not an hour.
type oplogGrower struct {
	r        *repo.Repository
	st       storage.Store
	last     repo.SegmentInfo // the timeline's last segment
	template bson.D           // a real insert entry of the snapshot's range
	entries  int64            // synthetic entries written so far
	segments int              // synthetic segments written so far
	base     uint32           // the first second after the snapshot's range
	rng      *rand.Rand
}

// newOplogGrower opens the repository at url and finds the snapshot's
// timeline and a real insert entry to copy.
func newOplogGrower(ctx context.Context, b *testing.B, url string) *oplogGrower {
	st, err := storage.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: url})
	if err != nil {
		b.Fatal(err)
	}
	shards, err := r.Shards(ctx)
	if err != nil || len(shards) != 1 {
		b.Fatalf("shards of %s: %v %v, want one", url, shards, err)
	}
	segs, err := r.ListSegments(ctx, shards[0])
	if err != nil || len(segs) == 0 {
		b.Fatalf("segments of %s: %d, %v: the snapshot should have captured its range", url, len(segs), err)
	}
	g := &oplogGrower{r: r, st: st, last: segs[len(segs)-1], base: segs[len(segs)-1].Last.T + 1,
		rng: rand.New(rand.NewPCG(7, 16))}
	var seen []string
	for _, s := range segs {
		entries, err := r.ReadSegment(ctx, s)
		if err != nil {
			b.Fatal(err)
		}
		for _, e := range entries {
			op, _ := e.Lookup("op").StringValueOK()
			ns, _ := e.Lookup("ns").StringValueOK()
			seen = append(seen, op+" "+ns)
			if op == "i" && !strings.HasSuffix(ns, "$cmd") {
				if err := bson.Unmarshal(e, &g.template); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if g.template == nil {
		b.Fatalf("no insert entry in the snapshot's range to copy (entries: %v)", seen)
	}
	return g
}

// extendTo appends entries until the synthetic oplog holds n of them.
func (g *oplogGrower) extendTo(ctx context.Context, b *testing.B, n int64) {
	batch := make([]bson.Raw, 0, segmentEntries)
	for g.entries < n {
		batch = batch[:0]
		for len(batch) < segmentEntries && g.entries < n {
			batch = append(batch, g.entry(b, g.entries))
			g.entries++
		}
		info, err := g.r.WriteSegmentAfter(ctx, g.last.Shard, g.last.Timeline, g.last.Last, batch)
		if err != nil {
			b.Fatal(err)
		}
		g.last = info
		g.segments++
	}
}

// entry is synthetic entry k: the template (its ns, ui, term, version)
// inserting a new ~180-byte document (32 random hex digits among text, so
// segments do not compress far better than real ones), k/perSecond seconds
// after the snapshot's range, with increment k%perSecond+1.
func (g *oplogGrower) entry(b *testing.B, k int64) bson.Raw {
	ts := optime.Timestamp{T: g.base + uint32(k/perSecond), I: uint32(k%perSecond) + 1}
	doc := bson.D{
		{Key: "_id", Value: int64(1_000_000_000 + k)},
		{Key: "n", Value: k},
		{Key: "r", Value: fmt.Sprintf("%016x%016x", g.rng.Uint64(), g.rng.Uint64())},
		{Key: "note", Value: fmt.Sprintf("synthetic entry %09d of the scale benchmark: inserted after the snapshot", k)},
	}
	e := make(bson.D, 0, len(g.template))
	for _, f := range g.template {
		switch f.Key {
		case "ts":
			f.Value = bson.Timestamp{T: ts.T, I: ts.I}
		case "wall":
			f.Value = bson.NewDateTimeFromTime(time.Unix(int64(ts.T), 0))
		case "o":
			f.Value = doc
		}
		e = append(e, f)
	}
	raw, err := bson.Marshal(e)
	if err != nil {
		b.Fatal(err)
	}
	return raw
}
