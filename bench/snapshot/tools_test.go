package snapshotbench

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rewind-backup/rewind/bench/benchtool"
)

// run is one measured tool run.
type run = benchtool.Run

// buildRewind builds the rewind command into dir.
func buildRewind(tb testing.TB, dir string) string {
	bin := filepath.Join(dir, "rewind")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rewind")
	cmd.Dir = benchtool.ModuleRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build rewind: %v\n%s", err, out)
	}
	return bin
}

// mongodump returns the mongodump binary, built into the shared cache when missing.
func mongodump(tb testing.TB) string { return filepath.Join(benchtool.MongoTools(tb), "mongodump") }

// measure runs a command and records its wall time and peak RSS (VmHWM).
func measure(ctx context.Context, tb testing.TB, name string, argv ...string) run {
	return benchtool.Measure(ctx, tb, name, argv...)
}

func diskBytes(tb testing.TB, path string) int64 { return benchtool.DiskBytes(tb, path) }

func row(r run, docs int, size int64) string {
	s := r.Elapsed.Seconds()
	return fmt.Sprintf("%-28s %8.1fs %8.2f MB/s %9.0f docs/s %9.1f MiB stored %7.1f MiB peak RSS",
		r.Name, s, float64(size)/1e6/s, float64(docs)/s, float64(r.Stored)/(1<<20), float64(r.MaxRSS)/(1<<20))
}
