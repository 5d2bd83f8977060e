package export_test

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// TestMemoryDoesNotGrowWithUntouchedData exports a collection of 4 MiB and
// one of 64 MiB, each with the same 40 oplog entries after the snapshot:
// the export holds in memory only the documents those entries write (the
// same count for both), and the most it retains (the live heap) grows by
// far less than the data.
func TestMemoryDoesNotGrowWithUntouchedData(t *testing.T) {
	small := measureExport(t, 2_000)
	large := measureExport(t, 32_000)
	t.Logf("4 MiB: held %d documents, peak live heap %s MiB; 64 MiB: held %d, peak live heap %s MiB",
		small.held, mib(small.peak), large.held, mib(large.peak))
	if small.held != 30 || large.held != 30 {
		t.Errorf("held %d and %d documents in memory, want the 30 the entries leave", small.held, large.held)
	}
	growth, data := large.peak-small.peak, large.bytes-small.bytes
	if growth > data/4 {
		t.Errorf("peak heap grew by %s MiB for %s MiB more data: it should not follow the data", mib(growth), mib(data))
	}
}

type exportRun struct {
	held, bytes int64
	peak        int64
}

// measureExport writes a repository of n 2 KiB documents in 256 KiB chunks
// and exports it to a discarding stream, sampling the heap meanwhile.
func measureExport(t *testing.T, n int) exportRun {
	ctx := context.Background()
	var docs []bson.D
	pad := strings.Repeat("x", 2000)
	for i := range n {
		docs = append(docs, bson.D{{Key: "_id", Value: int64(i)}, {Key: "pad", Value: pad}})
	}
	var entries []bson.D
	for i := range 20 { // updates of documents spread over the collection
		entries = append(entries, rt.Update("big.data", int64(i*n/20), bson.D{{Key: "_id", Value: int64(i * n / 20)}, {Key: "v", Value: i}}))
	}
	for i := range 10 {
		entries = append(entries, rt.Delete("big.data", int64(i*n/10+1)), rt.Insert("big.data", bson.D{{Key: "_id", Value: int64(n + i)}}))
	}
	r := rt.New(t, rt.Spec{ChunkDocs: 128, Collections: []rt.Collection{{DB: "big", Name: "data", Docs: docs}}, Entries: entries})
	docs, entries = nil, nil
	req := export.Request{To: restore.When{Latest: true}, Format: export.Archive, Out: export.Stdout}
	var run exportRun
	// Twice, keeping the lower peak: a buffer pool or a collection that
	// happens to fall at a sample shows in one run, what the export holds
	// shows in both.
	for i := range 2 {
		p, err := export.Prepare(ctx, r.Repository, req)
		must(t, err)
		runtime.GC()
		stop := make(chan struct{})
		peak := make(chan int64)
		go func() { peak <- sampleHeap(stop) }()
		rep, err := p.Write(ctx, export.Options{Stdout: io.Discard, Parallel: 2, Log: testLogger(t)})
		close(stop)
		p.Release()
		must(t, err)
		if want := int64(n); rep.Documents != want {
			t.Fatalf("wrote %d documents, want %d", rep.Documents, want)
		}
		if pk := <-peak; i == 0 || pk < run.peak {
			run = exportRun{held: rep.Held, bytes: rep.Bytes, peak: pk}
		}
	}
	return run
}

// sampleHeap returns the largest live heap seen until stop: it collects
// garbage every 10 ms and reads what is retained, so a short export and a
// long one are both measured while they work (waiting for the runtime's
// own collections would measure the small one before its first).
func sampleHeap(stop <-chan struct{}) int64 {
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	var peak int64
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		runtime.GC()
		metrics.Read(s)
		peak = max(peak, int64(s[0].Value.Uint64()))
		select {
		case <-stop:
			return peak
		case <-tick.C:
		}
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f", float64(n)/(1<<20)) }
