package restorebench

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// estimateSizes are the data sets of BenchmarkEstimate, in MiB:
// $REWIND_BENCH_ESTIMATE_MB (comma-separated), default 8,16,32.
func estimateSizes(b *testing.B) []int {
	v := os.Getenv("REWIND_BENCH_ESTIMATE_MB")
	if v == "" {
		return []int{8, 16, 32}
	}
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("REWIND_BENCH_ESTIMATE_MB=%q: want sizes in MiB, 8,16,32", v)
		}
		out = append(out, n)
	}
	return out
}

// BenchmarkEstimate prints `rewind restore --dry-run --target`'s estimated
// time against the time the restore then takes (wall time of the process),
// at three data set sizes, each restored into a fresh test server (the
// dry run's probe into the same one, just before). Goal: within ±25 %.
func BenchmarkEstimate(b *testing.B) {
	ctx := context.Background()
	rewind := testbin.Rewind(b)
	var lines []string
	for _, mb := range estimateSizes(b) {
		url, d := estimateFixture(ctx, b, rewind, mb)
		tgt := testserver.Start(b)
		dry := measure(ctx, b, "rewind restore --dry-run --json", rewind, "restore", "--repo", url, "--target", tgt.URI(),
			"--to", "latest", "--parallel", fmt.Sprint(parallel), "--dry-run", "--json")
		var pv api.PlanView
		if err := json.Unmarshal([]byte(dry.Stdout), &pv); err != nil || pv.Estimate == nil || pv.Estimate.NotEstimated != "" {
			b.Fatalf("dry run: %v\n%s\n%s", err, dry.Stdout, dry.Stderr)
		}
		rw := measure(ctx, b, "rewind restore", rewind, "restore", "--repo", url, "--target", tgt.URI(),
			"--to", "latest", "--parallel", fmt.Sprint(parallel))
		tgt.Kill()
		e := pv.Estimate
		off := 100 * (e.Seconds - rw.Elapsed.Seconds()) / rw.Elapsed.Seconds()
		lines = append(lines, fmt.Sprintf("| %d MiB | %d | %.2f s | %.2f s | %+.0f %% | %s | dry run %.2f s | %s |", mb, d.docs,
			e.Seconds, rw.Elapsed.Seconds(), off, e.Summary, dry.Elapsed.Seconds(), grab(rw.Stdout, `Restored from snapshot \S+ in (\S+)`)+"; "+grab(strings.Join(strings.Fields(rw.Stdout), " "), `time spent (.*?) TARGET`)))
		b.ReportMetric(math.Abs(off), fmt.Sprintf("%dMiB-|off|-%%", mb))
	}
	b.Logf("estimate against actual (parallel %d, each into a fresh server):\n| size | documents | estimate | actual | off | estimate's parts | | restore's own time; its steps |\n| --- | --- | --- | --- | --- | --- | --- | --- |\n%s",
		parallel, strings.Join(lines, "\n"))
}

// estimateFixture loads a data set of mb MiB into a source server and
// snapshots it into a new file repository; the source is gone afterwards.
func estimateFixture(ctx context.Context, b *testing.B, rewind string, mb int) (string, dataset) {
	src := testserver.Start(b)
	if src.External() {
		b.Fatalf("this benchmark restores into fresh servers it starts itself: unset %s", testserver.EnvURI)
	}
	d := generate(mb)
	t0 := time.Now()
	insertAll(ctx, b, src.Client(), src.DB("bench"), d, parallel)
	b.Logf("%d MiB: loaded %d documents in %s", mb, d.docs, time.Since(t0).Round(time.Second))
	url := "file://" + filepath.Join(b.TempDir(), "repo")
	measure(ctx, b, "rewind init", rewind, "init", "--repo", url)
	measure(ctx, b, "rewind snapshot", rewind, "snapshot", "--source", src.URI(), "--repo", url,
		"--ns", src.DB("bench")+".*", "--parallel", fmt.Sprint(parallel))
	src.Kill()
	return url, d
}
