package browse_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// Benchmarks of the operation browser and of a document's history over a
// day of oplog: 10^6 entries (REWIND_BENCH_ENTRIES) spread evenly over 24
// hours (REWIND_BENCH_SPAN, in seconds: the lighter the load, the more
// index counts per entry), in segments of 10,000 entries
// (REWIND_BENCH_SEGMENT), written straight
// through the repository format on the file backend (zstd), each segment
// with its index, as capture writes them:
//
//	go test ./internal/browse -run '^$' -bench . -benchtime 3x
//
// Each benchmark prints its baseline, measured in the same run on the same
// repository. REWIND_BENCH_KEEP=1 keeps the repository (its path is
// logged) to time the command itself on it.

// dayOfOplog is the benchmarks' repository, built once per run.
type dayOfOplog struct {
	w       *written
	entries int
	target  bson.RawValue // the _id whose history is asked
	touched int           // entries that write it
}

var (
	dayOnce  sync.Once
	day      *dayOfOplog
	benchDir string // removed by TestMain
)

func TestMain(m *testing.M) {
	code := m.Run()
	if benchDir != "" && os.Getenv("REWIND_BENCH_KEEP") == "" {
		os.RemoveAll(benchDir)
	}
	os.Exit(code)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// buildDay writes the repository: ten collections, 60 % inserts of ~200
// byte documents (random numbers and words: zstd stores about a third), 30 % $v:2 updates, 10 % deletes, one deleteMany of
// 5,000 documents as two batched applyOps at noon, and one document
// (bench.c0 {_id: "target"}) updated every 10,000 entries.
func buildDay(b *testing.B) *dayOfOplog {
	dayOnce.Do(func() {
		n, per, span := envInt("REWIND_BENCH_ENTRIES", 1_000_000), envInt("REWIND_BENCH_SEGMENT", 10_000), envInt("REWIND_BENCH_SPAN", 86400)
		start := time.Now()
		dir, err := os.MkdirTemp("", "rewind-bench-browse-")
		must(b, err)
		benchDir = dir
		w := newWrittenIn(b, filepath.Join(dir, "repo"), "mongodb", map[string][]bson.D{"bench.c0": {{{Key: "_id", Value: "target"}, {Key: "n", Value: 0}}}})
		d := &dayOfOplog{w: w, entries: n}
		d.target, err = browse.ParseID(`"target"`)
		must(b, err)
		var batch []stamped
		var last, inc uint32
		rng := rand.New(rand.NewPCG(1, 2))
		words := []string{"order", "shipped", "pending", "customer", "street", "invoice", "paid", "returned", "gift", "express"}
		for i := 0; i < n; i++ {
			sec := uint32(10 + int64(i)*int64(span)/int64(n))
			ns := fmt.Sprintf("bench.c%d", i%10)
			var e bson.D
			switch {
			case i == n/2:
				e = bigDelete(0, 3000)
			case i == n/2+1:
				e = bigDelete(3000, 5000)
			case i%10_000 == 5_000:
				e = rt.Update("bench.c0", "target", diff(bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: i}}}}))
				d.touched++
			case i%10 < 6:
				e = rt.Insert(ns, bson.D{{Key: "_id", Value: int64(i)}, {Key: "name", Value: "customer " + strconv.Itoa(rng.IntN(1e6))},
					{Key: "note", Value: text(rng, words, 12)}, {Key: "total", Value: rng.Float64() * 1000}, {Key: "sku", Value: rng.Int64()}})
			case i%10 < 9:
				e = rt.Update(ns, int64(i-3), diff(bson.D{{Key: "u", Value: bson.D{{Key: "qty", Value: i % 97}}}}))
			default:
				e = rt.Delete(ns, int64(i-9))
			}
			if inc++; sec != last {
				last, inc = sec, 1
			}
			batch = append(batch, at(sec, inc, e))
			if len(batch) == per || i == n-1 {
				w.segment(b, batch...)
				batch = batch[:0]
			}
		}
		day = d
		b.Logf("built %d entries over %d s in %d segments (%s stored) in %s at %s", n, span, len(w.segs), dirSize(b, dir), time.Since(start).Round(time.Millisecond), w.url)
	})
	return day
}

func bigDelete(from, to int) bson.D {
	var ops []bson.D
	for id := from; id < to; id++ {
		ops = append(ops, rt.Delete("bench.c9", int64(1_000_000_000+id)))
	}
	return applyOps(0, ops...)
}

// BenchmarkSummary is `rewind oplog --summary` over the whole day, counted
// from the segments' indexes; its baseline is the same summary with every
// index moved away, so that every segment is read and decompressed.
func BenchmarkSummary(b *testing.B) {
	d := buildDay(b)
	ctx := context.Background()
	q := browse.Query{From: restore.When{TS: optime.Timestamp{T: t0}}, To: restore.When{Latest: true}}
	var fromIndex browse.Summary
	b.Run("from-indexes", func(b *testing.B) {
		for b.Loop() {
			s, err := browse.Summarize(ctx, d.w.r, q)
			must(b, err)
			fromIndex = s
		}
		b.ReportMetric(float64(fromIndex.Operations), "operations")
		b.ReportMetric(float64(fromIndex.Indexed), "indexes-read")
	})
	b.Run("baseline-decompress-every-segment", func(b *testing.B) {
		moved := filepath.Join(b.TempDir(), "indexes")
		must(b, os.Rename(filepath.Join(d.w.dir, "oplog-index"), moved))
		defer func() { must(b, os.Rename(moved, filepath.Join(d.w.dir, "oplog-index"))) }()
		var s browse.Summary
		for b.Loop() {
			var err error
			s, err = browse.Summarize(ctx, d.w.r, q)
			must(b, err)
		}
		if s.ReadWhole != len(d.w.segs) || !slices.Equal(s.Rows, fromIndex.Rows) {
			b.Fatalf("baseline read %d of %d segments whole; rows equal: %v", s.ReadWhole, len(d.w.segs), slices.Equal(s.Rows, fromIndex.Rows))
		}
		b.ReportMetric(float64(s.Operations), "operations")
	})
}

// BenchmarkHistory is `rewind history` of one _id over the day: the
// snapshot, then every entry replayed for that document. Its baseline is
// the floor of any such scan: reading and decompressing every segment and
// looking at each entry's ts, in the same run.
func BenchmarkHistory(b *testing.B) {
	d := buildDay(b)
	ctx := context.Background()
	b.Run("history", func(b *testing.B) {
		var h browse.DocHistory
		for b.Loop() {
			var err error
			h, err = browse.History(ctx, d.w.r, browse.HistoryQuery{NS: "bench.c0", ID: d.target})
			must(b, err)
		}
		if len(h.Versions) != d.touched+1 || h.Entries != int64(d.entries)+2 {
			b.Fatalf("%d versions from %d entries, want %d from %d", len(h.Versions), h.Entries, d.touched+1, d.entries+2)
		}
		b.ReportMetric(float64(len(h.Versions)), "versions")
	})
	b.Run("baseline-read-every-entry", func(b *testing.B) {
		for b.Loop() {
			n := 0
			err := d.w.r.ReadEntries(ctx, d.w.segs, optime.Zero, func(optime.Timestamp, bson.Raw) error { n++; return nil })
			must(b, err)
			if n != d.entries+2 {
				b.Fatalf("read %d entries", n)
			}
		}
	})
}

// dirSize sums the sizes of the files under dir, by top directory.
func dirSize(b *testing.B, dir string) string {
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		info, err := e.Info()
		rel, _ := filepath.Rel(filepath.Join(dir, "repo"), p)
		top, _, _ := strings.Cut(rel, string(filepath.Separator))
		sizes[top] += info.Size()
		return err
	})
	must(b, err)
	return fmt.Sprintf("segments %.1f MiB, indexes %.1f MiB", float64(sizes["oplog"])/(1<<20), float64(sizes["oplog-index"])/(1<<20))
}

// text is n random words.
func text(rng *rand.Rand, words []string, n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		b.WriteString(words[rng.IntN(len(words))])
		b.WriteByte(' ')
	}
	return b.String()
}
