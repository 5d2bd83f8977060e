// Package scalebench measures how the cost of rewind's commands grows: the
// wall time and peak memory of `rewind snapshot`, `list`, `prune
// --dry-run`, `restore --dry-run`, `restore` and `verify --read-data`, run
// as a user runs them (the built binary as a child process, a FerretDB
// test server, a file:// repository), at growing data sizes and oplog
// lengths. It prints each measurement with its growth against the
// smallest size, and writes a CSV file, a markdown table and two PNG plots.
// See README.md for the commands; the regular test suite does not run it.
package scalebench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The two axes: data sizes in MiB (snapshot, restore, verify grow with
// them) and oplog lengths in entries (list, prune, the plan, verify and
// the restore's replay grow with them).
var (
	dataSizes  = []int64{16, 64, 256}
	oplogSizes = []int64{10_000, 100_000, 1_000_000}
)

const (
	colls    = 4 // collections of the data set
	parallel = 4 // rewind snapshot/restore --parallel (their default)
)

// steps is how many sizes of each axis a run measures: $REWIND_SCALE_MAX,
// 1 to 3, default 2 (16 and 64 MiB, 10^4 and 10^5 entries: a few minutes);
// 3 is the full run (256 MiB and 10^6 entries too).
func steps() int { return min(max(benchtool.EnvInt("REWIND_SCALE_MAX", 2), 1), len(dataSizes)) }

// replayMax is the longest oplog `rewind restore` replays into the test
// server: $REWIND_SCALE_REPLAY_MAX entries, default 10,000. The replay
// into FerretDB runs at a few hundred entries a second (README.md), so
// 10^5 takes minutes and 10^6 hours: they measure the server, not rewind.
func replayMax() int64 { return int64(benchtool.EnvInt("REWIND_SCALE_REPLAY_MAX", 10_000)) }

// outDir is where the CSV, markdown table and plots go: $REWIND_SCALE_OUT,
// default bench/scale/out (ignored by git; the committed ones are in docs/).
func outDir(tb testing.TB) string {
	if d := os.Getenv("REWIND_SCALE_OUT"); d != "" {
		return d
	}
	return filepath.Join(benchtool.ModuleRoot(tb), "bench", "scale", "out")
}

// BenchmarkScale runs both axes once per iteration (use -benchtime 1x):
// for each data size a fresh source server is loaded, snapshotted into a
// fresh repository and every command measured on that repository; then the
// smallest repository's oplog is extended with synthetic entries to each
// oplog length and the commands measured again.
func BenchmarkScale(b *testing.B) {
	ctx := context.Background()
	rewind := testbin.Rewind(b)
	out := outDir(b)
	for range b.N {
		var ms []measurement
		var base string // the smallest data size's repository URL
		for i, mb := range dataSizes[:steps()] {
			url := dataPoint(ctx, b, rewind, mb, func(m measurement) { ms = append(ms, m) })
			if i == 0 {
				base = url
			}
		}
		grow := newOplogGrower(ctx, b, base)
		for _, n := range oplogSizes[:steps()] {
			t0 := time.Now()
			grow.extendTo(ctx, b, n)
			b.Logf("oplog extended to %d synthetic entries (%d segments) in %s", n, grow.segments, time.Since(t0).Round(10*time.Millisecond))
			oplogPoint(ctx, b, rewind, base, n, func(m measurement) { ms = append(ms, m) })
		}
		b.Log("\n" + growthReport(ms))
		if err := write(out, ms, benchtool.LoadAverage()); err != nil {
			b.Fatal(err)
		}
		b.Logf("wrote %s", strings.Join([]string{"scale.csv", "scale.md", "scale-time.png", "scale-memory.png"}, ", ")+" to "+out)
	}
}

// dataPoint loads mb MiB into a fresh test server, snapshots it into a
// fresh repository and measures every command on it; it returns the
// repository's URL.
func dataPoint(ctx context.Context, b *testing.B, rewind string, mb int64, add func(measurement)) string {
	src := testserver.Start(b)
	if src.External() {
		b.Fatalf("this benchmark restores into fresh servers it starts itself: unset %s", testserver.EnvURI)
	}
	db := src.DB("bench")
	t0 := time.Now()
	docs, size := benchtool.Load(b, src.Client(), db, colls, int(mb))
	b.Logf("%d MiB: loaded %d documents, %.1f MiB in %d collections in %s", mb, docs, float64(size)/(1<<20), colls, time.Since(t0).Round(time.Second))
	url := "file://" + filepath.Join(b.TempDir(), "repo")
	benchtool.Measure(ctx, b, "rewind init", rewind, "init", "--repo", url)
	snap := benchtool.MeasurePeak(ctx, b, "snapshot", rewind, "snapshot", "--source", src.URI(), "--repo", url,
		"--ns", db+".*", "--parallel", fmt.Sprint(parallel))
	src.Kill()
	add(measurement{Axis: axisData, X: mb, Run: snap})
	for _, r := range readers(ctx, b, rewind, url, true) {
		add(measurement{Axis: axisData, X: mb, Run: r})
	}
	return url
}

// oplogPoint measures the commands that read the repository on its oplog
// of n entries (and the restore, when n is at most replayMax).
func oplogPoint(ctx context.Context, b *testing.B, rewind, url string, n int64, add func(measurement)) {
	for _, r := range readers(ctx, b, rewind, url, n <= replayMax()) {
		add(measurement{Axis: axisOplog, X: n, Run: r})
	}
}

// readers runs list, the prune plan, the restore plan, verify --read-data
// and (when restore is set) a restore into a fresh test server, one after
// the other on the repository at url.
func readers(ctx context.Context, b *testing.B, rewind, url string, restore bool) []benchtool.Run {
	runs := []benchtool.Run{
		benchtool.MeasurePeak(ctx, b, "list", rewind, "list", "--repo", url),
		benchtool.MeasurePeak(ctx, b, "prune --dry-run", rewind, "prune", "--repo", url, "--dry-run"),
		benchtool.MeasurePeak(ctx, b, "restore --dry-run", rewind, "restore", "--repo", url, "--to", "latest", "--dry-run"),
		benchtool.MeasurePeak(ctx, b, "verify --read-data", rewind, "verify", "--repo", url, "--read-data"),
	}
	if !restore {
		return runs
	}
	tgt := testserver.Start(b)
	defer tgt.Kill()
	rs := benchtool.MeasurePeak(ctx, b, "restore", rewind, "restore", "--repo", url, "--target", tgt.URI(),
		"--to", "latest", "--parallel", fmt.Sprint(parallel))
	b.Logf("restore: %s", steps1(rs.Stdout))
	return append(runs, rs)
}

// steps1 is the lines of restore's report that say how long it took and
// where the time went, on one line.
func steps1(stdout string) string {
	var got []string
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "time spent") || strings.Contains(line, "Restored from") {
			got = append(got, strings.Join(strings.Fields(line), " "))
		}
	}
	return strings.Join(got, "; ")
}
