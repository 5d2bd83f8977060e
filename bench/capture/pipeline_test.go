package capture

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// BenchmarkPipeline feeds the capture pipeline (batching, spool, encoding,
// upload to a file repository) with real oplog entries recorded from the
// test server, at full speed with the server taken out. The baseline writes
// the same bytes, in the same object sizes, with os.WriteFile and fsync.
func BenchmarkPipeline(b *testing.B) {
	recorded := recordEntries(b)
	const n = 200_000
	entries, bytes := synthesize(recorded, n)
	b.Logf("%d entries, %.1f MB, from %d recorded entries", n, float64(bytes)/1e6, len(recorded))

	b.Run("rewind", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := runPipeline(b, entries)
			b.ReportMetric(float64(n)/d.Seconds(), "entries/s")
			b.ReportMetric(float64(bytes)/1e6/d.Seconds(), "MB/s")
		}
	})
	b.Run("baseline-writefile", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			d := runBaseline(b, entries)
			b.ReportMetric(float64(n)/d.Seconds(), "entries/s")
			b.ReportMetric(float64(bytes)/1e6/d.Seconds(), "MB/s")
		}
	})
}

// recordEntries runs a workload on a fresh test server and returns its oplog.
func recordEntries(b *testing.B) []bson.Raw {
	srv := testserver.Start(b)
	cfg := srv.Workload(42)
	cfg.Ops, cfg.LargeEvery = 1000, 0
	if _, err := workload.Run(context.Background(), srv.Client(), cfg, nil); err != nil {
		b.Fatal(err)
	}
	cur, err := srv.Client().Database("local").Collection("oplog.rs").Find(context.Background(), bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	var out []bson.Raw
	for cur.Next(context.Background()) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	return out
}

// synthesize repeats the recorded entries with fresh, increasing timestamps.
func synthesize(recorded []bson.Raw, n int) ([]bson.Raw, int) {
	out := make([]bson.Raw, n)
	total := 0
	for i := range n {
		src := recorded[i%len(recorded)]
		out[i] = withTS(src, uint32(1_700_000_000+i/1000), uint32(i%1000+1))
		total += len(out[i])
	}
	return out, total
}

// withTS copies an entry with its ts replaced, keeping field order.
func withTS(e bson.Raw, t, i uint32) bson.Raw {
	idx, doc := bsoncore.AppendDocumentStart(nil)
	elems, _ := bsoncore.Document(e).Elements()
	for _, el := range elems {
		if el.Key() == "ts" {
			doc = bsoncore.AppendTimestampElement(doc, "ts", t, i)
			continue
		}
		doc = append(doc, el...)
	}
	doc, _ = bsoncore.AppendDocumentEnd(doc, idx)
	return bson.Raw(doc)
}

type repoSink struct{ r *repo.Repository }

func (s repoSink) WriteSegment(ctx context.Context, b oplog.Batch) error {
	_, err := s.r.WriteSegmentAfter(ctx, "bench", b.Timeline, b.Prev, b.Entries)
	return err
}

func runPipeline(b *testing.B, entries []bson.Raw) time.Duration {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := storage.Open(ctx, filepath.Join(dir, "repo"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	spool, err := oplog.OpenSpool(filepath.Join(dir, "spool"), 1<<30)
	if err != nil {
		b.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	c := &oplog.Capture{Sink: repoSink{r}, Spool: spool, FlushInterval: 500 * time.Millisecond,
		MaxBatchBytes: 16 << 20, DrainTimeout: time.Minute,
		Read: func(ctx context.Context, out chan<- bson.Raw) error {
			for _, e := range entries {
				out <- e
			}
			stop() // everything read: the pipeline flushes and drains
			return nil
		}}
	start := time.Now()
	if err := c.Run(runCtx); err != nil {
		b.Fatal(err)
	}
	d := time.Since(start)
	last, _ := optime.OfEntry(entries[len(entries)-1])
	if got := c.Stats.LastDurable(); got != last {
		b.Fatalf("pipeline ended at %s, want %s", got, last)
	}
	return d
}

// runBaseline writes the same bytes in 16 MiB files with fsync.
func runBaseline(b *testing.B, entries []bson.Raw) time.Duration {
	dir := b.TempDir()
	start := time.Now()
	var buf []byte
	n := 0
	flush := func() {
		p := filepath.Join(dir, strconv.Itoa(n))
		f, err := os.Create(p)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
		f.Close()
		buf, n = buf[:0], n+1
	}
	for _, e := range entries {
		buf = append(buf, e...)
		if len(buf) >= 16<<20 {
			flush()
		}
	}
	if len(buf) > 0 {
		flush()
	}
	return time.Since(start)
}
