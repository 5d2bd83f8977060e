package verify_test

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/verify"
)

// BenchmarkReadData compares `verify --read-data` with reading the same
// objects' bytes raw from the same backend (file), in the same run: the
// ratio is what decryption, decompression and the checks cost.
func BenchmarkReadData(b *testing.B) {
	f := newFixture(b, 2)
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(1, 2))
	// 200 segments of 1,000 entries (~150 KiB of BSON each, half random).
	tl := "ffffeeeeddddcccc"
	must(b, f.r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: tl, Flavor: "mongodb", Started: t0}))
	gapAt := t0.Add(48 * time.Hour)
	must(b, f.r.RecordGap(ctx, repo.Gap{Shard: "rs0", Before: f.segs[len(f.segs)-1].Last, After: optime.Timestamp{T: uint32(gapAt.Unix()), I: 1}}))
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
		}
		_, err := f.r.WriteSegment(ctx, "rs0", tl, es)
		must(b, err)
	}
	var vTime, rawTime time.Duration
	var vBytes, rawBytes int64
	for b.Loop() {
		start := time.Now()
		rep, err := verify.Run(ctx, f.r, verify.Options{ReadData: true})
		must(b, err)
		if !rep.Healthy() {
			b.Fatalf("%+v", rep.Problems())
		}
		vTime += time.Since(start)
		vBytes += rep.ReadBytes
		start = time.Now()
		rawBytes += readRaw(b, f.store)
		rawTime += time.Since(start)
	}
	vMB := float64(vBytes) / (1 << 20) / vTime.Seconds()
	rawMB := float64(rawBytes) / (1 << 20) / rawTime.Seconds()
	b.ReportMetric(vMB, "verify-MiB/s")
	b.ReportMetric(rawMB, "raw-MiB/s")
	b.ReportMetric(vMB/rawMB, "ratio")
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
