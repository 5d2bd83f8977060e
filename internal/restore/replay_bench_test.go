package restore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// replayWorkload is an oplog range over a few collections that hold docs
// documents each before it: about half updates ($v:2 diffs, as MongoDB
// 5.0+ logs them), 30 % inserts of new documents (a little more: an entry
// that picks a deleted document inserts a new one), 20 % deletes, in random
// order; with, for every entry, the write a raw client would send to reach
// the same state (insert, replacement by _id with the post-image, delete
// by _id): the "same final operations" of the ceiling.
type replayWorkload struct {
	nss     []string
	initial map[string][]bson.Raw
	entries []bson.Raw
	models  []mongo.WriteModel // models[i] is entries[i]'s write
}

func newReplayWorkload(db string, colls, docs, n int) replayWorkload {
	rng := rand.New(rand.NewPCG(16, 3))
	pad := strings.Repeat("x", 120)
	w := replayWorkload{initial: map[string][]bson.Raw{}}
	type doc struct {
		n     int32
		alive bool
	}
	state := map[string][]doc{}
	mk := func(id, v int32) bson.Raw {
		b, _ := bson.Marshal(bson.D{{Key: "_id", Value: id}, {Key: "n", Value: v}, {Key: "pad", Value: pad}})
		return b
	}
	for c := range colls {
		ns := fmt.Sprintf("%s.c%d", db, c)
		w.nss = append(w.nss, ns)
		for i := range docs {
			w.initial[ns] = append(w.initial[ns], mk(int32(i), 0))
			state[ns] = append(state[ns], doc{0, true})
		}
	}
	for i := range n {
		ns := w.nss[rng.IntN(colls)]
		var e bson.D
		var m mongo.WriteModel
		id := int32(rng.IntN(len(state[ns])))
		p := rng.IntN(10)
		switch {
		case p < 3 || !state[ns][id].alive:
			id = int32(len(state[ns]))
			state[ns] = append(state[ns], doc{int32(i), true})
			d := mk(id, int32(i))
			e = bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: d}}
			m = mongo.NewInsertOneModel().SetDocument(d)
		case p < 5:
			state[ns][id].alive = false
			e = bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
			m = mongo.NewDeleteOneModel().SetFilter(bson.D{{Key: "_id", Value: id}})
		default:
			state[ns][id].n = int32(i)
			e = bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "$v", Value: int32(2)},
				{Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: int32(i)}}}}}}},
				{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
			m = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: id}}).SetReplacement(mk(id, int32(i)))
		}
		b, _ := bson.Marshal(e)
		w.entries = append(w.entries, b)
		w.models = append(w.models, m)
	}
	return w
}

// segments cuts the entries as restore reads them, a segment at a time.
func (w replayWorkload) segments(size int) [][]bson.Raw {
	var out [][]bson.Raw
	for es := w.entries; len(es) > 0; {
		k := min(size, len(es))
		out = append(out, es[:k])
		es = es[k:]
	}
	return out
}

func benchLanes() []int { return []int{1, 2, 4} }

// BenchmarkReplayTranslate is the parallel replay with the server taken
// out: decode, partition, translate and build the write models of 100,000
// entries, which each lane's replay.Applier carries out in a replay.Memory
// holding that lane's documents (the in-memory target a server-free export
// uses). entries/s is the figure issue 16 asks >= 200,000 of; on a shared
// machine, cores-used (CPU seconds per second) says how much of it the
// run had, and entries/cpu-s is the rate per core, which other load
// changes far less. lanes=1 is the serial replay of before, in the same run.
//
//	go test ./internal/restore -run '^$' -bench ReplayTranslate -count 3
func BenchmarkReplayTranslate(b *testing.B) {
	w := newReplayWorkload("app", 4, 5000, 100_000)
	for _, lanes := range benchLanes() {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			ctx := context.Background()
			var spent, cpu time.Duration
			for range b.N {
				b.StopTimer()
				pa := memoryApplier(b, w, lanes)
				runtime.GC() // the last run's garbage is not this run's cost
				b.StartTimer()
				start, cpu0 := time.Now(), benchtool.CPUTime()
				for _, seg := range w.segments(1000) {
					if _, err := pa.Apply(ctx, seg); err != nil {
						b.Fatal(err)
					}
				}
				spent += time.Since(start)
				cpu += benchtool.CPUTime() - cpu0
			}
			entries := float64(len(w.entries) * b.N)
			b.ReportMetric(entries/spent.Seconds(), "entries/s")
			b.ReportMetric(cpu.Seconds()/spent.Seconds(), "cores-used")
			b.ReportMetric(entries/cpu.Seconds(), "entries/cpu-s")
		})
	}
}

// memoryApplier is a parallelApplier whose lanes each replay into their
// own replay.Memory, loaded with the documents the partitioner gives them
// (a Memory is not safe for concurrent use; the lanes share no document).
func memoryApplier(tb testing.TB, w replayWorkload, lanes int) *parallelApplier {
	pt := newPartitioner(Plan{}, lanes)
	mems := make([]*replay.Memory, lanes+1)
	for i := range mems {
		mems[i] = replay.NewMemory()
	}
	for ns, docs := range w.initial {
		byLane := make([][]bson.Raw, len(mems))
		for _, d := range docs {
			e, _ := bson.Marshal(bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: d}})
			l, _ := pt.place(e)
			if lanes > 1 {
				l++
			}
			byLane[l] = append(byLane[l], d)
		}
		for i, ds := range byLane {
			if err := mems[i].Load(ns, ds); err != nil {
				tb.Fatal(err)
			}
		}
	}
	return newParallelApplier(Plan{}, lanes, func(i int) *replay.Applier { return &replay.Applier{Memory: mems[i]} })
}

// BenchmarkReplayServer replays REWIND_BENCH_REPLAY_ENTRIES (default
// 1,000) entries of the workload into the test server with rewind's
// parallel replay, then, from the same starting state in the same run,
// sends the same final operations with raw driver BulkWrite calls (each
// entry's write, partitioned into the same lanes, at most 50 per call as
// the replay sends them, ordered and unordered): the ceiling. It prints
// both rates and rewind's share of the ceiling's. FerretDB writes a few
// dozen replacements a second here: 1,000 entries take about 20 s a run.
//
//	go test ./internal/restore -run '^$' -bench ReplayServer -benchtime 1x -count 3 -timeout 30m
func BenchmarkReplayServer(b *testing.B) {
	n := 1000
	if v := os.Getenv("REWIND_BENCH_REPLAY_ENTRIES"); v != "" {
		n, _ = strconv.Atoi(v)
	}
	srv := testserver.Start(b)
	ctx := context.Background()
	w := newReplayWorkload(srv.DB("rb"), 4, 500, n)
	for _, lanes := range []int{1, 4} {
		b.Run(fmt.Sprintf("lanes=%d", lanes), func(b *testing.B) {
			for range b.N {
				rewind := timed(b, srv, w, func() error {
					pa := newParallelApplier(Plan{}, lanes, func(int) *replay.Applier { return &replay.Applier{Client: srv.Client()} })
					for _, seg := range w.segments(1000) {
						if _, err := pa.Apply(ctx, seg); err != nil {
							return err
						}
					}
					return nil
				})
				ordered := timed(b, srv, w, func() error { return rawBulk(ctx, srv.Client(), w, lanes, true) })
				unordered := timed(b, srv, w, func() error { return rawBulk(ctx, srv.Client(), w, lanes, false) })
				rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
				b.ReportMetric(rate(rewind), "rewind-entries/s")
				b.ReportMetric(rate(ordered), "raw-ordered-ops/s")
				b.ReportMetric(rate(unordered), "raw-unordered-ops/s")
				b.ReportMetric(ordered.Seconds()/rewind.Seconds(), "rewind/ordered")
				b.ReportMetric(unordered.Seconds()/rewind.Seconds(), "rewind/unordered")
				fmt.Printf("replay of %d entries, %d lanes: rewind %s (%.0f/s), raw ordered %s (%.0f/s), raw unordered %s (%.0f/s); rewind at %.0f %% of ordered, %.0f %% of unordered\n",
					n, lanes, rewind.Round(time.Millisecond), rate(rewind), ordered.Round(time.Millisecond), rate(ordered),
					unordered.Round(time.Millisecond), rate(unordered), 100*ordered.Seconds()/rewind.Seconds(), 100*unordered.Seconds()/rewind.Seconds())
			}
		})
	}
}

// timed loads the workload's starting state (untimed), times run, and
// checks the result holds the documents the workload leaves.
func timed(b *testing.B, srv *testserver.Server, w replayWorkload, run func() error) time.Duration {
	ctx := context.Background()
	b.StopTimer()
	for _, ns := range w.nss {
		db, coll, _ := strings.Cut(ns, ".")
		c := srv.Client().Database(db).Collection(coll)
		if err := c.Drop(ctx); err != nil {
			b.Fatal(err)
		}
		docs := make([]any, len(w.initial[ns]))
		for i, d := range w.initial[ns] {
			docs[i] = d
		}
		if _, err := c.InsertMany(ctx, docs); err != nil {
			b.Fatal(err)
		}
	}
	b.StartTimer()
	start := time.Now()
	if err := run(); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	b.StopTimer()
	var total int64
	for _, ns := range w.nss {
		db, coll, _ := strings.Cut(ns, ".")
		c, err := srv.Client().Database(db).Collection(coll).CountDocuments(ctx, bson.D{})
		if err != nil {
			b.Fatal(err)
		}
		total += c
	}
	if want := w.finalCount(); total != want {
		b.Fatalf("%d documents after the run, want %d", total, want)
	}
	b.StartTimer()
	return d
}

func (w replayWorkload) finalCount() int64 {
	n := int64(0)
	for _, docs := range w.initial {
		n += int64(len(docs))
	}
	for _, e := range w.entries {
		switch op, _ := e.Lookup("op").StringValueOK(); op {
		case "i":
			n++
		case "d":
			n--
		}
	}
	return n
}

// rawBulk sends the workload's final operations with the driver alone:
// per lane (the partitioner's) and namespace, in entry order, at most 50
// per BulkWrite (replay.DefaultWriteBatch), lanes at once.
func rawBulk(ctx context.Context, c *mongo.Client, w replayWorkload, lanes int, ordered bool) error {
	pt := newPartitioner(Plan{}, lanes)
	// Per lane, grouped by namespace (a document's writes keep their order),
	// as the replay's own flush groups them.
	byLane := make([]map[string][]mongo.WriteModel, lanes)
	for i := range byLane {
		byLane[i] = map[string][]mongo.WriteModel{}
	}
	for i, e := range w.entries {
		l, _ := pt.place(e)
		ns, _ := e.Lookup("ns").StringValueOK()
		byLane[l][ns] = append(byLane[l][ns], w.models[i])
	}
	opts := options.BulkWrite().SetOrdered(ordered)
	g, ctx := errgroup.WithContext(ctx)
	for _, groups := range byLane {
		g.Go(func() error {
			for ns, models := range groups {
				db, coll, _ := strings.Cut(ns, ".")
				for len(models) > 0 {
					k := min(len(models), replay.DefaultWriteBatch)
					if _, err := c.Database(db).Collection(coll).BulkWrite(ctx, models[:k], opts); err != nil {
						return err
					}
					models = models[k:]
				}
			}
			return nil
		})
	}
	return g.Wait()
}
