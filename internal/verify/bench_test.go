package verify_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/verify"
)

// BenchmarkReadData compares `verify --read-data` with reading the same
// objects' bytes raw from the same backend (file), sequentially, in the
// same run: the ratio is what decryption, decompression and the checks
// cost. Two repositories: "oplog" holds 200 segments of 1,000 entries
// (~150 KiB of BSON each, half random) and their indexes; "snapshot" holds
// REWIND_BENCH_MB MiB (default 64) of the workload's documents in 8 MiB
// chunks (zstd, the default level), as a snapshot stores them.
//
//	go test ./internal/verify -run '^$' -bench ReadData -benchtime 3x -count 3
//
// verify-MiB/s is stored bytes over the whole Run (listing included),
// read-MiB/s stored bytes over the read phase (Report.ReadTime), plain-MB/s
// the plaintext checked per second of the read phase. The machine is
// shared: cores-used is the CPU seconds Run used per second (2 is the
// whole machine), plain-MB/cpu-s the plaintext checked per CPU second,
// which other load changes far less (twice it is what 2 free cores reach).
func BenchmarkReadData(b *testing.B) {
	b.Run("oplog", func(b *testing.B) {
		f := newFixture(b, 2)
		plain := oplogSegments(b, f)
		benchReadData(b, f, plain, nil)
	})
	b.Run("snapshot", func(b *testing.B) {
		f := newFixture(b, 2)
		plain, chunks := snapshotChunks(b, f)
		benchReadData(b, f, plain, chunks)
	})
}

// benchReadData runs verify --read-data on f's repository. With chunks
// (the snapshot's documents, chunk by chunk) it also measures, in the same
// run, the work no verify can skip on those bytes: SHA-256, zstd decoding
// (of the same chunks compressed at the default level) and BSON validation
// of every document, one goroutine, in CPU time (checks-MB/cpu-s; vs-checks
// is verify's plain-MB/cpu-s over it).
func benchReadData(b *testing.B, f *fixture, plain int64, chunks [][]bson.Raw) {
	ctx := context.Background()
	var vTime, readTime, rawTime, cpu time.Duration
	var vBytes, rawBytes int64
	for b.Loop() {
		start, cpu0 := time.Now(), benchtool.CPUTime()
		rep, err := verify.Run(ctx, f.r, verify.Options{ReadData: true})
		cpu += benchtool.CPUTime() - cpu0
		must(b, err)
		if !rep.Healthy() {
			b.Fatalf("%+v", rep.Problems())
		}
		vTime += time.Since(start)
		readTime += rep.ReadTime
		vBytes += rep.ReadBytes
		start = time.Now()
		rawBytes += readRaw(b, f.store)
		rawTime += time.Since(start)
	}
	vMB := float64(vBytes) / (1 << 20) / vTime.Seconds()
	rawMB := float64(rawBytes) / (1 << 20) / rawTime.Seconds()
	b.ReportMetric(vMB, "verify-MiB/s")
	b.ReportMetric(float64(vBytes)/(1<<20)/readTime.Seconds(), "read-MiB/s")
	b.ReportMetric(float64(plain)*float64(b.N)/1e6/readTime.Seconds(), "plain-MB/s")
	b.ReportMetric(rawMB, "raw-MiB/s")
	b.ReportMetric(vMB/rawMB, "ratio")
	b.ReportMetric(cpu.Seconds()/vTime.Seconds(), "cores-used")
	perCPU := float64(plain) * float64(b.N) / 1e6 / cpu.Seconds()
	b.ReportMetric(perCPU, "plain-MB/cpu-s")
	if chunks != nil {
		floor := checksPerCPU(b, chunks)
		b.ReportMetric(floor, "checks-MB/cpu-s")
		b.ReportMetric(perCPU/floor, "vs-checks")
	}
}

// oplogSegments writes 200 segments of 1,000 entries on a new timeline
// after a gap and returns their plaintext size.
func oplogSegments(b *testing.B, f *fixture) int64 {
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	tl := "ffffeeeeddddcccc"
	must(b, f.r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: tl, Flavor: "mongodb", Started: t0}))
	gapAt := t0.Add(48 * time.Hour)
	must(b, f.r.RecordGap(ctx, repo.Gap{Shard: "rs0", Before: f.segs[len(f.segs)-1].Last, After: optime.Timestamp{T: uint32(gapAt.Unix()), I: 1}}))
	var plain int64
	for s := 0; s < 200; s++ {
		var es []bson.Raw
		for k := 0; k < 1000; k++ {
			ts := optime.Timestamp{T: uint32(gapAt.Unix()) + uint32(s), I: uint32(k + 1)}
			pad := make([]byte, 64)
			for i := range pad[:32] {
				pad[i] = byte(rng.Uint32())
			}
			raw, _ := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}, {Key: "op", Value: "i"}, {Key: "ns", Value: "d.c"},
				{Key: "o", Value: bson.D{{Key: "_id", Value: int64(s*1000 + k)}, {Key: "pad", Value: pad}, {Key: "s", Value: fmt.Sprintf("entry %d of segment %d", k, s)}}}})
			es = append(es, raw)
			plain += int64(len(raw))
		}
		_, err := f.r.WriteSegment(ctx, "rs0", tl, es)
		must(b, err)
	}
	return plain
}

// snapshotChunks writes a snapshot of the workload's documents, in 8 MiB
// chunks, over the fixture's last segment, and returns its plaintext size.
func snapshotChunks(b *testing.B, f *fixture) (int64, [][]bson.Raw) {
	ctx := context.Background()
	docs := benchtool.WorkloadDocuments(testserver.FerretDBKinds, 64)
	last := f.segs[len(f.segs)-1]
	id := last.First.Time().Format("20060102T150405Z") + "-bench"
	cm := repo.CollectionManifest{DB: "d", Name: "w", UUID: "w0", Chunks: []repo.ChunkRef{}}
	var chunks [][]bson.Raw
	for start := 0; start < len(docs); {
		end, size := start, 0
		for end < len(docs) && size+len(docs[end]) <= 8<<20 {
			size += len(docs[end])
			end++
		}
		ref, err := f.r.WriteChunk(ctx, "rs0", id, cm.UUID, len(cm.Chunks), docs[start:end])
		must(b, err)
		cm.Chunks = append(cm.Chunks, ref)
		cm.Count, cm.Bytes = cm.Count+ref.Count, cm.Bytes+ref.Bytes
		chunks = append(chunks, docs[start:end])
		start = end
	}
	must(b, f.r.WriteManifest(ctx, repo.Manifest{ID: id, Shard: "rs0", Flavor: "mongodb", Start: last.First, End: last.Last,
		Started: t0, Finished: t0, Collections: []repo.CollectionManifest{cm}}))
	return cm.Bytes, chunks
}

// checksPerCPU is the plaintext per CPU second of SHA-256, zstd decoding
// and BSON validation of the chunks, one after the other.
func checksPerCPU(b *testing.B, chunks [][]bson.Raw) float64 {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	must(b, err)
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	must(b, err)
	defer dec.Close()
	var plain [][]byte
	var comp [][]byte
	var n int64
	for _, docs := range chunks {
		var p []byte
		for _, d := range docs {
			p = append(p, d...)
		}
		plain, comp, n = append(plain, p), append(comp, enc.EncodeAll(p, nil)), n+int64(len(p))
	}
	cpu0 := benchtool.CPUTime()
	for i, docs := range chunks {
		_ = sha256.Sum256(plain[i])
		out, err := dec.DecodeAll(comp[i], make([]byte, 0, len(plain[i])))
		if err != nil || len(out) != len(plain[i]) {
			b.Fatalf("decode: %d bytes, %v", len(out), err)
		}
		for _, d := range docs {
			must(b, d.Validate())
		}
	}
	return float64(n) / 1e6 / (benchtool.CPUTime() - cpu0).Seconds()
}

// readRaw reads every segment and chunk object's bytes, sequentially.
func readRaw(b *testing.B, st storage.Store) int64 {
	ctx := context.Background()
	var n int64
	for _, prefix := range []string{"oplog/", "data/", "snapshots/"} {
		must(b, st.List(ctx, prefix, func(i storage.Info) error {
			rc, err := st.Get(ctx, i.Key)
			if err != nil {
				return err
			}
			defer rc.Close()
			m, err := io.Copy(io.Discard, rc)
			n += m
			return err
		}))
	}
	return n
}
