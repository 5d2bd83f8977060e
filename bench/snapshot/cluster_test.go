package snapshotbench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// shardMB is each stand-in shard's data size: $REWIND_BENCH_SHARD_MB,
// default 64 (the size; FerretDB copies a few MB/s).
func shardMB() int {
	if n, err := strconv.Atoi(os.Getenv("REWIND_BENCH_SHARD_MB")); err == nil && n > 0 {
		return n
	}
	return 64
}

// BenchmarkClusterSnapshot loads 3 stand-in shards (test servers) and a
// config server, then in the same run takes a snapshot of each shard alone
// and a cluster snapshot of all of them, with the same --parallel. It
// reports the cluster's wall time against the slowest single shard's (the
// goal is ≤ 1.3×). Use -benchtime 1x.
func BenchmarkClusterSnapshot(b *testing.B) {
	ctx := context.Background()
	const parallel = 4
	cfg := testserver.Start(b)
	in := cluster.Inputs{ConfigServer: cfg.URI()}
	for i := range 3 {
		s := testserver.Start(b)
		t0 := time.Now()
		docs, size := load(b, s.Client(), s.DB("bench"), benchColls, shardMB())
		b.Logf("shard s%d: loaded %d documents, %.1f MiB in %s", i, docs, float64(size)/(1<<20), time.Since(t0).Round(time.Second))
		in.Shards = append(in.Shards, cluster.Shard{Name: fmt.Sprintf("s%d", i), URI: s.URI()})
	}
	d, err := source.OpenDeployment(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	log := slog.New(slog.DiscardHandler)
	b.ResetTimer()
	for i := range b.N {
		var slowest time.Duration
		for _, m := range d.Members[:3] {
			r := newRepo(b, filepath.Join(b.TempDir(), fmt.Sprint(i, m.Name)))
			t0 := time.Now()
			if _, err := snapshot.Take(ctx, m.Source, r, snapshot.Options{Parallel: parallel, Log: log}); err != nil {
				b.Fatal(err)
			}
			el := time.Since(t0)
			b.Logf("shard %s alone: %s", m.Name, el.Round(10*time.Millisecond))
			slowest = max(slowest, el)
		}
		r := newRepo(b, filepath.Join(b.TempDir(), fmt.Sprint(i, "cluster")))
		t0 := time.Now()
		m, err := snapshot.TakeCluster(ctx, d, r, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: parallel, Log: log}})
		if err != nil {
			b.Fatal(err)
		}
		el := time.Since(t0)
		b.Logf("cluster of 3 shards × %d MiB (parts %v): %s, slowest shard alone %s: %.2f×",
			shardMB(), m.Shards(), el.Round(10*time.Millisecond), slowest.Round(10*time.Millisecond), el.Seconds()/slowest.Seconds())
		b.ReportMetric(el.Seconds()/slowest.Seconds(), "x-slowest-shard")
	}
}

func newRepo(b *testing.B, dir string) *repo.Repository {
	url := "file://" + dir
	st, err := storage.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r, err := repo.Init(context.Background(), st, repo.InitOptions{Location: url})
	if err != nil {
		b.Fatal(err)
	}
	return r
}
