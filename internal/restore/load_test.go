package restore

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// chunkPlan stores docs as a snapshot's chunks of at most chunkBytes, in
// colls collections, in a file repository, and returns a plan that loads
// them all.
func chunkPlan(tb testing.TB, docs []bson.Raw, colls, chunkBytes int) (*repo.Repository, Plan) {
	ctx := context.Background()
	st, err := storage.Open(ctx, "file://"+tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	p := Plan{}
	p.Snapshot.ID = "20261129T000000Z-load"
	for c := range colls {
		cm := repo.CollectionManifest{DB: "d", Name: strconv.Itoa(c), UUID: "c" + strconv.Itoa(c)}
		var part []bson.Raw
		for i := c; i < len(docs); i += colls {
			part = append(part, docs[i])
		}
		for start := 0; start < len(part); {
			end, size := start, 0
			for end < len(part) && (end == start || size+len(part[end]) <= chunkBytes) {
				size += len(part[end])
				end++
			}
			ref, err := r.WriteChunk(ctx, "rs0", p.Snapshot.ID, cm.UUID, len(cm.Chunks), part[start:end])
			if err != nil {
				tb.Fatal(err)
			}
			cm.Chunks = append(cm.Chunks, ref)
			start = end
		}
		ns := Namespace{DB: "d", Coll: cm.Name}
		p.Collections = append(p.Collections, CollectionPlan{Source: ns, Target: ns, Manifest: cm})
	}
	return r, p
}

// decodeAhead hands every chunk to use exactly once with its documents,
// runs the uses side by side when the budget has room, never holds more
// plaintext than its budget, and stops at the first error, naming the
// chunk when the chunk itself is unreadable.
func TestDecodeAhead(t *testing.T) {
	docs := workload.Documents(workload.Config{Seed: 5, Kinds: testserver.FerretDBKinds}, 3000)
	r, p := chunkPlan(t, docs, 3, 16<<10)
	const parallel = 3
	var largest, chunks int64
	for _, c := range p.Collections {
		for _, ref := range c.Manifest.Chunks {
			largest = max(largest, ref.Bytes)
			chunks++
		}
	}
	// run decodes the plan within budget and returns the most plaintext
	// that use held at once.
	run := func(budget int64) int64 {
		var mu sync.Mutex
		seen := map[string]int{}
		var inUse, peak int64
		got := 0
		err := decodeAhead(context.Background(), r, p, parallel, budget, func(_ context.Context, j chunkJob, ds []bson.Raw) error {
			mu.Lock()
			seen[j.ref.Key]++
			got += len(ds)
			inUse += j.ref.Bytes
			peak = max(peak, inUse)
			mu.Unlock()
			time.Sleep(2 * time.Millisecond) // an insert takes time: gives other uses the chance to overlap, if the budget lets them
			mu.Lock()
			inUse -= j.ref.Bytes
			mu.Unlock()
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if got != len(docs) || int64(len(seen)) != chunks {
			t.Fatalf("budget %d: used %d documents in %d chunks, want %d in %d", budget, got, len(seen), len(docs), chunks)
		}
		for k, n := range seen {
			if n != 1 {
				t.Errorf("budget %d: chunk %s used %d times", budget, k, n)
			}
		}
		return peak
	}
	// A budget of one chunk: one chunk at a time, decoded or in use.
	if peak := run(largest); peak > largest {
		t.Errorf("budget of one chunk (%d bytes): %d bytes in use at once", largest, peak)
	}
	// The load's budget: the inserters work side by side.
	if peak := run(readAheadBudget(p, parallel)); peak <= largest {
		t.Errorf("the load's budget: at most %d bytes in use at once, never two chunks", peak)
	}

	stop := errors.New("insert failed")
	var calls atomic.Int64
	err := decodeAhead(context.Background(), r, p, parallel, readAheadBudget(p, parallel), func(context.Context, chunkJob, []bson.Raw) error {
		calls.Add(1)
		return stop
	})
	if !errors.Is(err, stop) || calls.Load() > parallel {
		t.Fatalf("a failing use: %v after %d calls, want the error after at most %d", err, calls.Load(), parallel)
	}

	bad := p.Collections[1].Manifest.Chunks[2]
	if err := r.Store().Delete(context.Background(), bad.Key); err != nil {
		t.Fatal(err)
	}
	err = decodeAhead(context.Background(), r, p, parallel, readAheadBudget(p, parallel), func(context.Context, chunkJob, []bson.Raw) error { return nil })
	if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), bad.Key) || !strings.Contains(err.Error(), "cannot be read") {
		t.Fatalf("a missing chunk: %v", err)
	}
}

// BenchmarkDecodeAhead is the load's reading with the server taken out:
// REWIND_BENCH_MB MiB (default 64) of the workload's documents in 8 MiB
// chunks (zstd, the default level), read through decodeAhead with
// DefaultParallel readers into a consumer that only counts documents.
// Baseline in the same run: the same chunks read one after the other by
// one goroutine (repo.ReadChunk), the old load's work per worker.
// cores-used and MB/cpu-s say how much of the shared machine it had.
//
//	go test ./internal/restore -run '^$' -bench DecodeAhead -count 3
func BenchmarkDecodeAhead(b *testing.B) {
	docs := benchtool.WorkloadDocuments(testserver.FerretDBKinds, 64)
	r, p := chunkPlan(b, docs, 4, 8<<20)
	var size int64
	for _, d := range docs {
		size += int64(len(d))
	}
	ctx := context.Background()
	var ahead, serial, cpu time.Duration
	for b.Loop() {
		start, cpu0 := time.Now(), benchtool.CPUTime()
		var n atomic.Int64
		err := decodeAhead(ctx, r, p, DefaultParallel, readAheadBudget(p, DefaultParallel), func(_ context.Context, _ chunkJob, ds []bson.Raw) error {
			n.Add(int64(len(ds)))
			return nil
		})
		if err != nil || n.Load() != int64(len(docs)) {
			b.Fatalf("read %d documents of %d: %v", n.Load(), len(docs), err)
		}
		ahead += time.Since(start)
		cpu += benchtool.CPUTime() - cpu0
		start = time.Now()
		for _, c := range p.Collections {
			for _, ref := range c.Manifest.Chunks {
				if _, err := r.ReadChunk(ctx, ref); err != nil {
					b.Fatal(err)
				}
			}
		}
		serial += time.Since(start)
	}
	mbs := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
	b.ReportMetric(mbs(ahead), "plain-MB/s")
	b.ReportMetric(mbs(serial), "one-reader-MB/s")
	b.ReportMetric(cpu.Seconds()/ahead.Seconds(), "cores-used")
	b.ReportMetric(float64(size)*float64(b.N)/1e6/cpu.Seconds(), "MB/cpu-s")
}
