// Package exportbench compares `rewind export --format archive` with
// `mongodump --archive` of the same state, in the same run (time, size,
// peak RSS), and measures the export pipeline with the server taken out.
// Run it with ./run.sh; the regular test suite does not run it.
package exportbench

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// dataMB is the data set size: $REWIND_BENCH_MB, default 32.
func dataMB() int { return benchtool.EnvInt("REWIND_BENCH_MB", 32) }

const benchColls = 4

// changes is how many updates, inserts and deletes (each) are written after
// the snapshot: $REWIND_BENCH_CHANGES, default 500. On FerretDB they are
// slow (~3 per second): the agent's polls scan its whole oplog.
func changes() int { return benchtool.EnvInt("REWIND_BENCH_CHANGES", 500) }

// BenchmarkExport loads the data set into a source, lets `rewind agent`
// take its base snapshot and capture changes written after it, then, on
// the same final state: `mongodump --archive`, `rewind export --format
// archive` (and bson, jsonl), and a check that mongorestore of rewind's
// archive gives every collection the source's count (use -benchtime 1x).
func BenchmarkExport(b *testing.B) {
	ctx := context.Background()
	tools, rewind := benchtool.MongoTools(b), testbin.Rewind(b)
	src := testserver.Start(b)
	if src.External() {
		b.Fatalf("this benchmark restores into fresh servers it starts itself: unset %s", testserver.EnvURI)
	}
	db := src.DB("bench")
	docs, size := benchtool.Load(b, src.Client(), db, benchColls, dataMB())
	dir := b.TempDir()
	url := "file://" + filepath.Join(dir, "repo")
	benchtool.Measure(ctx, b, "rewind init", rewind, "init", "--repo", url)
	stop := startAgent(b, rewind, dir, src.URI(), url)
	waitRepo(b, url, "the base snapshot", func(sh catalog.Shard) bool { return len(sh.Snapshots) > 0 })
	writeChanges(ctx, b, src, db)
	last, err := oracle.LastOplogTS(ctx, src.Client())
	if err != nil {
		b.Fatal(err)
	}
	waitRepo(b, url, "the oplog up to "+last.String(), func(sh catalog.Shard) bool {
		return len(sh.Windows) > 0 && !sh.Windows[len(sh.Windows)-1].To.Before(last)
	})
	stop()
	want := count(ctx, b, src, db)
	b.ResetTimer()
	for i := range b.N {
		out := filepath.Join(dir, strconv.Itoa(i))
		dump := benchtool.Measure(ctx, b, "mongodump --archive", filepath.Join(tools, "mongodump"), "--quiet", "--uri", src.URI(), "--db", db, "--archive="+out+".mongodump")
		dump.Stored = benchtool.DiskBytes(b, out+".mongodump")
		runs := []benchtool.Run{dump}
		for _, f := range []string{"archive", "bson", "jsonl"} {
			r := benchtool.Measure(ctx, b, "rewind export --format "+f, rewind, "export", "--repo", url, "--to", "latest", "--ns", db,
				"--format", f, "--out", out+"."+f)
			r.Stored = benchtool.DiskBytes(b, out+"."+f)
			if got := written(b, r.Stdout); got != want {
				b.Fatalf("rewind export --format %s wrote %d documents, the source holds %d:\n%s", f, got, want, r.Stdout)
			}
			runs = append(runs, r)
		}
		b.Logf("data: %d documents loaded, %.1f MiB of BSON in %d collections; then %d updates, %d inserts and %d deletes after the snapshot; %d documents at the end",
			docs, float64(size)/(1<<20), benchColls, changes(), changes(), changes(), want)
		for _, r := range runs {
			b.Logf("%-30s %7.2f s  %8.1f MiB  peak RSS %6.1f MiB", r.Name, r.Elapsed.Seconds(), float64(r.Stored)/(1<<20), float64(r.MaxRSS)/(1<<20))
		}
		b.Logf("rewind export --format archive report:\n%s", runs[1].Stdout)
		restored(ctx, b, tools, out+".archive", db, want)
		b.ReportMetric(runs[1].Elapsed.Seconds()/dump.Elapsed.Seconds(), "rewind/mongodump-time")
		b.ReportMetric(float64(runs[1].Stored)/float64(dump.Stored), "rewind/mongodump-size")
	}
}

// startAgent runs `rewind agent` (it takes a base snapshot at start) and
// returns what stops it.
func startAgent(b *testing.B, rewind, dir, source, url string) func() {
	cfg := filepath.Join(dir, "rewind.yaml")
	yaml := fmt.Sprintf("source: %q\nrepo: %q\napi:\n  listen: 127.0.0.1:0\ncapture:\n  flush_interval: 200ms\n  spool_dir: %q\n", source, url, filepath.Join(dir, "spool"))
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(rewind, "agent", "--config", cfg)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		_ = cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Errorf("rewind agent: %v", err)
		}
	}
	b.Cleanup(stop)
	return stop
}

// waitRepo polls the repository's catalog until cond holds for its shard.
func waitRepo(b *testing.B, url, what string, cond func(catalog.Shard) bool) {
	ctx := context.Background()
	r := benchtool.OpenRepo(b, url)
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		cat, err := catalog.Load(ctx, r)
		if err == nil && len(cat.Shards) == 1 && cond(cat.Shards[0]) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("waiting for %s: not within 5 minutes (%v)", what, err)
		}
	}
}

// writeChanges updates, inserts and deletes documents spread over the
// collections, after the snapshot: the export replays them.
func writeChanges(ctx context.Context, b *testing.B, src *testserver.Server, db string) {
	for i := range changes() {
		coll := src.Client().Database(db).Collection(fmt.Sprintf("c%d", i%benchColls))
		base := int64(i%benchColls) * 10_000_000
		if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: base + int64(i*3)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "changed", Value: i}}}}); err != nil {
			b.Fatal(err)
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: base + 9_000_000 + int64(i)}, {Key: "new", Value: i}}); err != nil {
			b.Fatal(err)
		}
		if _, err := coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: base + int64(i*3+1)}}); err != nil {
			b.Fatal(err)
		}
	}
}

var writtenRE = regexp.MustCompile(`documents +(\d+) written`)

// written reads the document count from rewind export's report.
func written(b *testing.B, report string) int64 {
	m := writtenRE.FindStringSubmatch(report)
	if m == nil {
		b.Fatalf("no document count in the report:\n%s", report)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n
}

// restored checks that mongorestore of the archive into a fresh server
// gives as many documents as the source holds.
func restored(ctx context.Context, b *testing.B, tools, archive, db string, want int64) {
	dst := testserver.Start(b)
	r := benchtool.Measure(ctx, b, "mongorestore --archive (rewind's)", filepath.Join(tools, "mongorestore"), "--quiet", "--uri", dst.URI(), "--archive="+archive)
	if got := count(ctx, b, dst, db); got != want {
		b.Fatalf("mongorestore of rewind's archive: %d documents, want %d", got, want)
	}
	b.Logf("mongorestore of rewind's archive into a fresh server: %d documents in %.1f s", want, r.Elapsed.Seconds())
}

// count counts the documents of the data set's collections on srv.
func count(ctx context.Context, b *testing.B, srv *testserver.Server, db string) int64 {
	var n int64
	for c := range benchColls {
		k, err := srv.Client().Database(db).Collection(fmt.Sprintf("c%d", c)).CountDocuments(ctx, bson.D{})
		if err != nil {
			b.Fatal(err)
		}
		n += k
	}
	return n
}
