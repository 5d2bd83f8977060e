package snapshotbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// BenchmarkStoredVsMongodumpGzip loads REWIND_BENCH_MB MiB (default 32) of
// the workload's documents (its value mix as FerretDB stores it, in 4
// collections) into a test server, then, in the same run on that data,
// takes `rewind snapshot` into a repository made with each
// `init --compression` level and `mongodump --archive --gzip`, and prints
// what each stored: the snapshot's objects (data/ and its manifest)
// against the archive. Use -benchtime 1x.
//
//	REWIND_BENCH_MB=32 go test ./bench/snapshot -run '^$' -bench StoredVsMongodumpGzip -benchtime 1x -v
func BenchmarkStoredVsMongodumpGzip(b *testing.B) {
	dump := mongodump(b)
	tmp := b.TempDir()
	rewind := buildRewind(b, tmp)
	srv := testserver.Start(b)
	db := srv.DB("bench")
	size, docs := loadWorkload(b, srv, db, 32)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(tmp, fmt.Sprint(i))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		gz := measure(ctx, b, "mongodump --archive --gzip", dump, "--quiet", "--uri", srv.URI(), "--db", db, "--gzip",
			"--archive="+filepath.Join(dir, "a.gz"))
		gz.Stored = fileSize(b, filepath.Join(dir, "a.gz"))
		lines := []string{fmt.Sprintf("data: %d workload documents, %.1f MiB of BSON in 4 collections", docs, float64(size)/(1<<20)),
			fmt.Sprintf("%-36s %10.2f MiB  %.4f of the BSON  %6.1fs", gz.Name, mib(gz.Stored), float64(gz.Stored)/float64(size), gz.Elapsed.Seconds())}
		for _, level := range repo.Levels {
			root := filepath.Join(dir, level)
			url := "file://" + root
			measure(ctx, b, "rewind init", rewind, "init", "--repo", url, "--compression", level)
			snap := measure(ctx, b, "rewind snapshot", rewind, "snapshot", "--source", srv.URI(), "--repo", url,
				"--ns", db+".*", "--parallel", "4")
			stored := diskBytes(b, filepath.Join(root, "data")) + diskBytes(b, filepath.Join(root, "snapshots"))
			lines = append(lines, fmt.Sprintf("%-36s %10.2f MiB  %.4f of the BSON  %6.1fs  %.3f x mongodump --gzip",
				"rewind snapshot, --compression "+level, mib(stored), float64(stored)/float64(size), snap.Elapsed.Seconds(),
				float64(stored)/float64(gz.Stored)))
			b.ReportMetric(float64(stored)/float64(gz.Stored), level+"/gzip")
		}
		b.Log("\n" + strings.Join(lines, "\n"))
	}
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }

// loadWorkload inserts mb MiB (REWIND_BENCH_MB when set) of workload
// documents into db, in 4 collections c0..c3, and returns their BSON size
// and count.
func loadWorkload(b *testing.B, srv *testserver.Server, db string, mb int) (int64, int) {
	ctx := context.Background()
	t0 := time.Now()
	docs := benchtool.WorkloadDocuments(srv.Kinds(), mb)
	var size int64
	for c := range 4 {
		coll := srv.Client().Database(db).Collection(fmt.Sprintf("c%d", c))
		var batch []any
		for i := c; i < len(docs); i += 4 {
			batch = append(batch, docs[i])
			size += int64(len(docs[i]))
			if len(batch) == 1000 || i+4 >= len(docs) {
				if _, err := coll.InsertMany(ctx, batch); err != nil {
					b.Fatalf("load %s: %v", coll.Name(), err)
				}
				batch = batch[:0]
			}
		}
	}
	b.Logf("loaded %d documents, %.1f MiB, in %s", len(docs), mib(size), time.Since(t0).Round(time.Second))
	return size, len(docs)
}
