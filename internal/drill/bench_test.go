package drill_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"path/filepath"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// BenchmarkDrill measures a whole drill (plan, read the quiet source,
// restore with checksums, compare, drop the scratch) of a snapshot of 64
// and 256 MiB of 16 KiB documents, and the RTO (restore seconds per GB):
//
//	go test -run '^$' -bench Drill -benchtime 1x -timeout 60m ./internal/drill/
func BenchmarkDrill(b *testing.B) {
	for _, mib := range []int{64, 256} {
		b.Run(fmt.Sprintf("%dMiB", mib), func(b *testing.B) { benchDrill(b, mib) })
	}
}

func benchDrill(b *testing.B, mib int) {
	ctx := context.Background()
	srv := testserver.Start(b)
	coll := srv.Client().Database(srv.DB("bench")).Collection("docs")
	payload := make([]byte, 16<<10-64)
	n := mib << 20 / (16 << 10)
	for i := 0; i < n; i += 64 {
		var docs []any
		for j := i; j < min(i+64, n); j++ {
			_, _ = rand.Read(payload)
			docs = append(docs, bson.D{{Key: "_id", Value: int64(j)}, {Key: "p", Value: bson.Binary{Data: payload}}})
		}
		_, err := coll.InsertMany(ctx, docs)
		must(b, err)
	}
	url := "file://" + filepath.Join(b.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(b, err)
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(b, err)
	src, err := source.Connect(ctx, srv.URI())
	must(b, err)
	defer src.Close(context.WithoutCancel(ctx))
	_, err = snapshot.Take(ctx, src, r, snapshot.Options{Log: quiet})
	must(b, err)
	scratch := testserver.Start(b)
	b.ResetTimer()
	for range b.N {
		res, err := drill.Run(ctx, drill.Deps{Repo: r, Scratch: scratch.Client(), Source: src, Log: quiet}, drill.Request{To: drill.Latest})
		must(b, err)
		if res.Verdict != drill.Exact {
			b.Fatalf("drill: %s", res.Summary())
		}
		b.ReportMetric(res.Seconds, "drill-s")
		b.ReportMetric(res.RestoreSeconds, "restore-s")
		b.ReportMetric(res.RTO, "rto-s/GB")
		b.ReportMetric(float64(res.Bytes)/1e6, "MB")
		for _, ph := range res.Phases {
			if ph.Name == "source" || ph.Name == "compare" || ph.Name == "restore/checksum" || ph.Name == "restore/load" {
				b.ReportMetric(ph.Seconds, ph.Name+"-s")
			}
		}
	}
}
