package restorebench

import (
	"context"
	"fmt"
	"testing"

	"github.com/rewind-backup/rewind/bench/benchtool"
)

// run is one measured tool run.
type run = benchtool.Run

func mongoTools(tb testing.TB) string { return benchtool.MongoTools(tb) }

func measure(ctx context.Context, tb testing.TB, name string, argv ...string) run {
	return benchtool.Measure(ctx, tb, name, argv...)
}

func diskBytes(tb testing.TB, path string) int64 { return benchtool.DiskBytes(tb, path) }

func row(r run, docs int, size int64) string {
	s := r.Elapsed.Seconds()
	rss := "-"
	if r.MaxRSS > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(r.MaxRSS)/(1<<20))
	}
	return fmt.Sprintf("%-34s %8.1f s %7.2f MB/s %8.0f docs/s  peak RSS %s", r.Name, s, float64(size)/1e6/s, float64(docs)/s, rss)
}
