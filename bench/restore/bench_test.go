// Package restorebench compares `rewind restore` with mongorestore and with
// a raw driver insertMany ceiling on the same data in the same run, each
// into a fresh FerretDB test server, and measures rewind's restore pipeline
// with the server taken out. Run it with ./run.sh (or the go test lines in
// it); the regular test suite does not run it.
package restorebench

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// fixture is the loaded source, its rewind repository and its archive.
type fixture struct {
	d       dataset
	db      string
	repoURL string
	archive string
	rewind  string
	tools   string
}

// BenchmarkRestore loads the data set once, backs it up with both tools,
// then restores it whole and one collection of it, each tool into a fresh
// server (use -benchtime 1x).
func BenchmarkRestore(b *testing.B) {
	ctx := context.Background()
	f := setup(ctx, b)
	b.ResetTimer()
	for range b.N {
		full(ctx, b, f)
		single(ctx, b, f)
	}
}

func setup(ctx context.Context, b *testing.B) fixture {
	f := fixture{tools: mongoTools(b), rewind: testbin.Rewind(b)}
	src := testserver.Start(b)
	if src.External() {
		b.Fatalf("this benchmark restores into fresh servers it starts itself: unset %s", testserver.EnvURI)
	}
	f.db = src.DB("bench")
	f.d = generateBench(b)
	t0 := time.Now()
	insertAll(ctx, b, src.Client(), f.db, f.d, parallel)
	b.Logf("loaded %d documents, %.1f MiB of BSON in %d collections (%s is %.1f MiB, the others %.1f MiB) in %s",
		f.d.docs, mib(f.d.size), len(f.d.colls), collName(0), mib(f.d.bytesOf(0)), mib(f.d.bytesOf(1)), time.Since(t0).Round(time.Second))
	dir := b.TempDir()
	f.repoURL = "file://" + filepath.Join(dir, "repo")
	f.archive = filepath.Join(dir, "archive")
	measure(ctx, b, "rewind init", f.rewind, "init", "--repo", f.repoURL)
	snap := measure(ctx, b, "rewind snapshot", f.rewind, "snapshot", "--source", src.URI(), "--repo", f.repoURL,
		"--ns", f.db+".*", "--parallel", fmt.Sprint(parallel))
	dump := measure(ctx, b, "mongodump --archive", filepath.Join(f.tools, "mongodump"), "--quiet", "--uri", src.URI(),
		"--db", f.db, "--archive="+f.archive)
	b.Logf("backups: rewind snapshot %s (%.1f MiB stored), mongodump --archive %s (%.1f MiB)",
		snap.Elapsed.Round(time.Second), mib(diskBytes(b, filepath.Join(dir, "repo", "data"))),
		dump.Elapsed.Round(time.Second), mib(diskBytes(b, f.archive)))
	src.Kill()
	return f
}

// full restores the whole data set with each tool into a fresh server.
func full(ctx context.Context, b *testing.B, f fixture) {
	tgt := testserver.Start(b)
	rw := measure(ctx, b, "rewind restore --to latest", f.rewind, "restore", "--repo", f.repoURL,
		"--target", tgt.URI(), "--to", "latest", "--parallel", fmt.Sprint(parallel))
	checkCounts(ctx, b, tgt, f, -1)
	tgt.Kill()

	tgt = testserver.Start(b)
	mr := measure(ctx, b, "mongorestore --archive", filepath.Join(f.tools, "mongorestore"), "--quiet",
		"--uri", tgt.URI(), "--archive="+f.archive)
	checkCounts(ctx, b, tgt, f, -1)
	tgt.Kill()

	tgt = testserver.Start(b)
	t0 := time.Now()
	insertAll(ctx, b, tgt.Client(), f.db, f.d, parallel)
	ceil := run{Name: fmt.Sprintf("ceiling: insertMany x%d", parallel), Elapsed: time.Since(t0)}
	checkCounts(ctx, b, tgt, f, -1)
	tgt.Kill()

	b.Logf("full restore of %d documents, %.1f MiB (parallel %d everywhere):\n%s\n%s\n%s\nrewind/ceiling time %.2f, rewind/mongorestore time %.2f\nrewind restore output:\n%s",
		f.d.docs, mib(f.d.size), parallel, row(rw, f.d.docs, f.d.size), row(mr, f.d.docs, f.d.size), row(ceil, f.d.docs, f.d.size),
		ratio(rw, ceil), ratio(rw, mr), rw.Stdout)
	b.ReportMetric(mbps(f.d.size, rw), "rewind-MB/s")
	b.ReportMetric(mbps(f.d.size, mr), "mongorestore-MB/s")
	b.ReportMetric(mbps(f.d.size, ceil), "ceiling-MB/s")
	b.ReportMetric(ratio(rw, ceil), "rewind/ceiling")
	b.ReportMetric(ratio(rw, mr), "rewind/mongorestore")
}

// single restores the collection nearest 5 MB with each tool.
func single(ctx context.Context, b *testing.B, f fixture) {
	c := nearest(f.d, 5e6)
	ns := f.db + "." + collName(c)
	docs, size := len(f.d.colls[c]), f.d.bytesOf(c)

	tgt := testserver.Start(b)
	rw := measure(ctx, b, "rewind restore --ns", f.rewind, "restore", "--repo", f.repoURL,
		"--target", tgt.URI(), "--to", "latest", "--ns", ns, "--parallel", fmt.Sprint(parallel))
	checkCounts(ctx, b, tgt, f, c)
	tgt.Kill()

	tgt = testserver.Start(b)
	mr := measure(ctx, b, "mongorestore --archive --nsInclude", filepath.Join(f.tools, "mongorestore"), "--quiet",
		"--uri", tgt.URI(), "--archive="+f.archive, "--nsInclude", ns)
	checkCounts(ctx, b, tgt, f, c)
	tgt.Kill()

	// The fixed cost before any document moves: start, lock, catalog, plan.
	dry := measure(ctx, b, "rewind restore --ns --dry-run", f.rewind, "restore", "--repo", f.repoURL,
		"--to", "latest", "--ns", ns, "--dry-run")
	stored, total := chunkBytes(ctx, b, f, collName(c))
	b.Logf("one collection of %d: %s, %d documents, %.1f MiB:\n%s\n%s\nrewind/mongorestore time %.2f\nrewind read %s (restore report: %s); its chunks are %.2f MiB stored of the repository's %.2f MiB of chunks; mongorestore reads the whole %.1f MiB archive\nrewind restore --dry-run of the same (start, lock, catalog, plan, count oplog entries; no target): %.2f s\nrewind restore --ns output:\n%s",
		len(f.d.colls), ns, docs, mib(size), row(rw, docs, size), row(mr, docs, size), ratio(rw, mr),
		grab(rw.Stdout, `snapshot objects\s+(.*)`), grab(rw.Stdout, `bytes read\s+(.*)`), mib(stored), mib(total), mib(diskBytes(b, f.archive)), dry.Elapsed.Seconds(), rw.Stdout)
	b.ReportMetric(ratio(rw, mr), "one-coll-rewind/mongorestore")
}

// checkCounts checks the target holds every document of the data set, or
// of collection only when only >= 0: a fast wrong restore is no result.
func checkCounts(ctx context.Context, b *testing.B, tgt *testserver.Server, f fixture, only int) {
	names, err := tgt.Client().Database(f.db).ListCollectionNames(ctx, bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	want := len(f.d.colls)
	if only >= 0 {
		want = 1
	}
	if len(names) != want {
		b.Fatalf("target holds collections %v, want %d", names, want)
	}
	for c := range f.d.colls {
		if only >= 0 && c != only {
			continue
		}
		n, err := tgt.Client().Database(f.db).Collection(collName(c)).EstimatedDocumentCount(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if n != int64(len(f.d.colls[c])) {
			b.Fatalf("target %s.%s holds %d documents, want %d", f.db, collName(c), n, len(f.d.colls[c]))
		}
	}
}

// chunkBytes is the stored size of one collection's chunks and of all
// chunks of the repository's snapshot.
func chunkBytes(ctx context.Context, b *testing.B, f fixture, coll string) (one, all int64) {
	st, err := storage.Open(ctx, f.repoURL)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: f.repoURL})
	if err != nil {
		b.Fatal(err)
	}
	snaps, err := r.ListSnapshots(ctx, "")
	if err != nil || len(snaps) != 1 {
		b.Fatalf("list snapshots: %v, %d snapshots", err, len(snaps))
	}
	m, err := r.ReadManifest(ctx, snaps[0].Shard, snaps[0].ID)
	if err != nil {
		b.Fatal(err)
	}
	for _, cm := range m.Collections {
		for _, ref := range cm.Chunks {
			info, err := st.Stat(ctx, ref.Key)
			if err != nil {
				b.Fatal(err)
			}
			all += info.Size
			if cm.Name == coll {
				one += info.Size
			}
		}
	}
	return one, all
}

func nearest(d dataset, bytes float64) int {
	best := 0
	for c := range d.colls {
		if math.Abs(float64(d.bytesOf(c))-bytes) < math.Abs(float64(d.bytesOf(best))-bytes) {
			best = c
		}
	}
	return best
}

func grab(s, re string) string {
	m := regexp.MustCompile(re).FindStringSubmatch(s)
	if m == nil {
		return "?"
	}
	return strings.TrimSpace(m[1])
}

func mib(n int64) float64            { return float64(n) / (1 << 20) }
func mbps(size int64, r run) float64 { return float64(size) / 1e6 / r.Elapsed.Seconds() }
func ratio(a, b run) float64         { return a.Elapsed.Seconds() / b.Elapsed.Seconds() }
