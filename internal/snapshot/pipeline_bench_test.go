package snapshot

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// BenchmarkWritePipeline is the snapshot's write pipeline with the server
// taken out: the workload's documents (its value mix, as FerretDB stores
// them), already in memory, go through the copier's own chunk packing
// (chunkWriter), SHA-256, zstd at each level, age (fastest+age) and Put
// into a file repository (fsync), DefaultParallel workers taking the
// collections as parts, as copier.run does. MB/s is of plaintext.
//
// The machine is shared, so besides wall-clock MB/s it reports the CPU
// time the pipeline used: cores-used (CPU seconds per second: 2 is the
// whole machine) and MB/cpu-s (plaintext per CPU second, which other
// load changes far less; twice it is what 2 free cores would reach).
//
// In the same iteration, on the same 8 MiB chunks, with the same number
// of workers, it measures the baselines: raw zstd EncodeAll at the same
// level (zstd-MB/cpu-s; vs-zstd is the pipeline's MB/cpu-s over it),
// SHA-256 alone (sha256-MB/cpu-s) and writing the stored bytes with
// write+fsync, one file per chunk (write-MB/s of plaintext carried, wall
// clock: it waits on the disk).
//
//	go test ./internal/snapshot -run '^$' -bench WritePipeline -count 3
//
// REWIND_BENCH_MB sets the data size (default 64).
func BenchmarkWritePipeline(b *testing.B) {
	colls, size := pipelineData(b)
	chunks := packChunks(colls)
	for _, mode := range []string{repo.LevelFastest, repo.LevelDefault, repo.LevelBetter, repo.LevelFastest + "+age"} {
		level, encrypt := mode, false
		if mode == repo.LevelFastest+"+age" {
			level, encrypt = repo.LevelFastest, true
		}
		b.Run(mode, func(b *testing.B) {
			b.SetBytes(size)
			var pipe, cpu, raw, sum, write time.Duration
			var stored int64
			for range b.N {
				b.StopTimer()
				r, dir := pipelineRepo(b, level, encrypt)
				b.StartTimer()
				start, cpu0 := time.Now(), benchtool.CPUTime()
				writeFromMemory(b, r, colls)
				pipe += time.Since(start)
				cpu += benchtool.CPUTime() - cpu0
				b.StopTimer()
				stored = diskBytes(b, filepath.Join(dir, "data"))
				raw += onCPU(func() { rawZstd(b, chunks, level) })
				sum += onCPU(func() { rawSHA256(chunks) })
				write += rawWrite(b, chunks, float64(stored)/float64(size))
				b.StartTimer()
			}
			mb := func(d time.Duration) float64 { return float64(size) * float64(b.N) / 1e6 / d.Seconds() }
			b.ReportMetric(cpu.Seconds()/pipe.Seconds(), "cores-used")
			b.ReportMetric(mb(cpu), "MB/cpu-s")
			b.ReportMetric(mb(raw), "zstd-MB/cpu-s")
			b.ReportMetric(mb(cpu)/mb(raw), "vs-zstd")
			b.ReportMetric(mb(sum), "sha256-MB/cpu-s")
			b.ReportMetric(mb(write), "write-MB/s")
			b.ReportMetric(float64(stored)/float64(size), "stored/plain")
		})
	}
}

// onCPU runs fn and returns the CPU time the process used meanwhile.
func onCPU(fn func()) time.Duration {
	cpu0 := benchtool.CPUTime()
	fn()
	return benchtool.CPUTime() - cpu0
}

// pipelineData is REWIND_BENCH_MB MiB of workload documents in 4
// collections, and its size.
func pipelineData(b *testing.B) ([][]bson.Raw, int64) {
	docs := benchtool.WorkloadDocuments(testserver.FerretDBKinds, 64)
	colls := make([][]bson.Raw, 4)
	var size int64
	for i, d := range docs {
		colls[i%4] = append(colls[i%4], d)
		size += int64(len(d))
	}
	return colls, size
}

// packChunks packs each collection as the copier does, for the baselines.
func packChunks(colls [][]bson.Raw) [][]byte {
	var out [][]byte
	for _, docs := range colls {
		var cur []byte
		for _, d := range docs {
			if len(cur) > 0 && len(cur)+len(d) > DefaultChunkBytes {
				out, cur = append(out, cur), nil
			}
			cur = append(cur, d...)
		}
		if len(cur) > 0 {
			out = append(out, cur)
		}
	}
	return out
}

func pipelineRepo(b *testing.B, level string, encrypt bool) (*repo.Repository, string) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := storage.Open(ctx, "file://"+dir)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	o := repo.InitOptions{Compression: repo.CompressionZstd, Level: level}
	if encrypt {
		id, err := age.GenerateX25519Identity()
		if err != nil {
			b.Fatal(err)
		}
		o.Recipient = id.Recipient().String()
	}
	r, err := repo.Init(ctx, st, o)
	if err != nil {
		b.Fatal(err)
	}
	return r, dir
}

// writeFromMemory runs the copier's workers over the collections: each
// collection is one part, packed by the worker's chunkWriter into
// WriteChunkData.
func writeFromMemory(b *testing.B, r *repo.Repository, colls [][]bson.Raw) {
	ctx := context.Background()
	cp := &copier{repo: r, shard: "rs0", id: "20261129T000000Z-bench", parallel: DefaultParallel, chunkBytes: DefaultChunkBytes}
	parts := make(chan int)
	var wg sync.WaitGroup
	for range cp.parallel {
		wg.Go(func() {
			w := chunkWriter{cp: cp, buf: make([]byte, 0, cp.chunkBytes)}
			for c := range parts {
				w.res = &result{info: &collInfo{db: "d", name: strconv.Itoa(c), id: fmt.Sprintf("c%d", c)}, chunks: map[int]repo.ChunkRef{}}
				for _, d := range colls[c] {
					if err := w.add(ctx, d); err != nil {
						b.Error(err)
						return
					}
				}
				if err := w.flush(ctx); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for c := range colls {
		parts <- c
	}
	close(parts)
	wg.Wait()
}

// eachChunk runs fn on every chunk with DefaultParallel workers and
// returns the wall time.
func eachChunk(chunks [][]byte, fn func(i int, chunk []byte)) time.Duration {
	start := time.Now()
	next := make(chan int)
	var wg sync.WaitGroup
	for range DefaultParallel {
		wg.Go(func() {
			for i := range next {
				fn(i, chunks[i])
			}
		})
	}
	for i := range chunks {
		next <- i
	}
	close(next)
	wg.Wait()
	return time.Since(start)
}

// rawZstd is EncodeAll at level on every chunk, one encoder per worker.
func rawZstd(b *testing.B, chunks [][]byte, level string) time.Duration {
	l := map[string]zstd.EncoderLevel{repo.LevelFastest: zstd.SpeedFastest, repo.LevelDefault: zstd.SpeedDefault,
		repo.LevelBetter: zstd.SpeedBetterCompression}[level]
	var pool sync.Pool
	return eachChunk(chunks, func(_ int, c []byte) {
		e, ok := pool.Get().(*zstd.Encoder)
		if !ok {
			var err error
			if e, err = zstd.NewWriter(nil, zstd.WithEncoderLevel(l), zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false)); err != nil {
				b.Error(err)
				return
			}
		}
		_ = e.EncodeAll(c, nil)
		pool.Put(e)
	})
}

func rawSHA256(chunks [][]byte) time.Duration {
	return eachChunk(chunks, func(_ int, c []byte) { _ = sha256.Sum256(c) })
}

// rawWrite writes the first ratio of every chunk (the size it is stored
// at) to its own file with write+fsync, as the file backend does.
func rawWrite(b *testing.B, chunks [][]byte, ratio float64) time.Duration {
	dir := b.TempDir()
	return eachChunk(chunks, func(i int, c []byte) {
		f, err := os.Create(filepath.Join(dir, strconv.Itoa(i)))
		if err == nil {
			_, err = f.Write(c[:int(float64(len(c))*ratio)])
		}
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			b.Error(err)
		}
	})
}

func diskBytes(b *testing.B, dir string) int64 {
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	return n
}
