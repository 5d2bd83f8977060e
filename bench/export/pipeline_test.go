package exportbench

import (
	"context"
	"io"
	"path/filepath"
	"strconv"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// BenchmarkPipeline is the export with the server taken out of the
// picture entirely: a file repository holding the data set in 8 MiB chunks
// and 1,500 oplog entries after the snapshot (updates, inserts, deletes;
// REWIND_BENCH_CHANGES each),
// exported to the latest point in each format, the archive to io.Discard
// and the directories to disk. MB/s is of BSON written.
func BenchmarkPipeline(b *testing.B) {
	var spec rt.Spec
	var size int64
	for c := range benchColls {
		col := rt.Collection{DB: "bench", Name: "c" + strconv.Itoa(c)}
		for _, raw := range benchtool.GenCollection(c, dataMB()<<20/benchColls) {
			var d bson.D
			if err := bson.Unmarshal(raw, &d); err != nil {
				b.Fatal(err)
			}
			col.Docs = append(col.Docs, d)
			size += int64(len(raw))
		}
		spec.Collections = append(spec.Collections, col)
	}
	spec.ChunkDocs = 8 << 20 / benchtool.DocSize
	for i := range changes() {
		ns := "bench.c" + strconv.Itoa(i%benchColls)
		base := int64(i%benchColls) * 10_000_000
		spec.Entries = append(spec.Entries,
			rt.Update(ns, base+int64(i*3), bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "i", Value: bson.D{{Key: "changed", Value: i}}}}}}),
			rt.Insert(ns, bson.D{{Key: "_id", Value: base + 9_000_000 + int64(i)}}),
			rt.Delete(ns, base+int64(i*3+1)))
	}
	r := rt.New(b, spec)
	spec = rt.Spec{}
	for _, f := range []export.Format{export.Archive, export.BSON, export.JSONL} {
		b.Run(string(f), func(b *testing.B) {
			ctx := context.Background()
			b.SetBytes(size)
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				out := "-"
				if f != export.Archive {
					n++
					out = filepath.Join(b.TempDir(), strconv.Itoa(n))
				}
				p, err := export.Prepare(ctx, r.Repository, export.Request{To: restore.When{Latest: true}, Format: f, Out: out})
				if err != nil {
					b.Fatal(err)
				}
				rep, err := p.Write(ctx, export.Options{Stdout: io.Discard})
				p.Release()
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(rep.Held), "held-docs")
			}
		})
	}
}
