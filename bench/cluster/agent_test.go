package clusterbench

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
)

// BenchmarkClusterAgent runs `rewind agent` (the binary, a child process,
// default settings) capturing a stand-in cluster of 1 and of 3 shards of
// $REWIND_BENCH_AGENT_MB MiB each (default $REWIND_BENCH_SHARD_MB). Once
// the agent's base cluster snapshot is stored, 1,000 writes at 100 per
// second go to the shards in turn (one writer per shard); each write's RPO is the time from its
// acknowledgement to when the segment holding its oplog entry appears in
// the repository (bench/capture's method, one watcher per shard). It
// reports RPO p50/p99/max (goal p99 ≤ 1 s) and the agent's peak RSS
// (VmHWM, over its whole run, base snapshot included; goal ≤ 256 MiB).
// Use -benchtime 1x.
func BenchmarkClusterAgent(b *testing.B) {
	mb := benchtool.EnvInt("REWIND_BENCH_AGENT_MB", shardMB())
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("shards=%d", n), func(b *testing.B) {
			c := startStandIn(b, n, mb)
			b.ResetTimer()
			for range b.N {
				r := runAgent(b, c, 1000, 100)
				b.Logf("%d shard(s) × %d MiB: base cluster snapshot %s; %d writes at %.0f/s: RPO p50 %s p99 %s max %s; agent CPU %.1f%% of one core while writing, peak RSS %.1f MiB; load average before / after: %s",
					n, mb, secs(r.snapshot), r.writes, r.writesPerSec, ms(r.p50), ms(r.p99), ms(r.max), r.cpu, mib(r.rss), r.load)
				b.ReportMetric(r.p50.Seconds()*1000, "p50-ms")
				b.ReportMetric(r.p99.Seconds()*1000, "p99-ms")
				b.ReportMetric(r.max.Seconds()*1000, "max-ms")
				b.ReportMetric(mib(r.rss), "agent-peak-RSS-MiB")
				b.ReportMetric(r.snapshot.Seconds(), "base-snapshot-s")
			}
		})
	}
}

type agentRun struct {
	snapshot      time.Duration // from the agent's start to its base cluster snapshot
	writes        int
	writesPerSec  float64
	p50, p99, max time.Duration
	cpu           float64 // % of one core, while writing
	rss           int64   // peak, bytes
	load          string
}

func runAgent(b *testing.B, c *standIn, writes int, rate float64) agentRun {
	ctx := context.Background()
	dir := b.TempDir()
	url, r := newRepo(b, dir, repo.Source{})
	out := agentRun{writes: writes, load: benchtool.LoadAverage()}
	t0 := time.Now()
	agent := benchtool.StartAgent(b, append(c.args(), "--repo", url, "--spool-dir", filepath.Join(dir, "spool"),
		"--api-listen", "", "--log-level", "warn")...)
	waitClusterSnapshot(b, r, 30*time.Minute)
	out.snapshot = time.Since(t0)

	watchers := make([]*benchtool.SegmentWatcher, len(c.shards))
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i, n := range c.names {
		w := &benchtool.SegmentWatcher{R: r, Shard: n}
		watchers[i] = w
		wg.Go(func() { w.Run(wctx) })
	}
	// acks[i][k] is when write k (to shard i) was acknowledged; zero for
	// the writes that went to other shards.
	acks := make([][]time.Time, len(c.shards))
	for i := range acks {
		acks[i] = make([]time.Time, writes)
	}
	cpu0 := benchtool.ProcCPU(b, agent.Process.Pid)
	start := time.Now()
	// One writer per shard (as independent clients would write), each
	// taking every n-th write on the common schedule of rate per second.
	errs := make(chan error, len(c.shards))
	var writers sync.WaitGroup
	for i, s := range c.shards {
		writers.Go(func() {
			coll := s.Client().Database(s.DB("rpo")).Collection("writes")
			for k := i; k < writes; k += len(c.shards) {
				time.Sleep(time.Until(start.Add(time.Duration(float64(k) / rate * float64(time.Second)))))
				doc := bson.D{{Key: "_id", Value: k}, {Key: "v", Value: strings.Repeat("x", 100)}}
				if _, err := coll.InsertOne(ctx, doc); err != nil {
					errs <- err
					return
				}
				acks[i][k] = time.Now()
			}
		})
	}
	writers.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	for i, s := range c.shards {
		watchers[i].WaitDurable(b, benchtool.NewestEntry(b, s.URI()), 60*time.Second)
	}
	stopWatch()
	wg.Wait()
	out.cpu = (benchtool.ProcCPU(b, agent.Process.Pid) - cpu0).Seconds() / time.Since(start).Seconds() * 100
	out.rss = benchtool.ProcMemory(agent.Process.Pid, "VmHWM")
	out.writesPerSec = float64(writes) / elapsed.Seconds()

	var lat []time.Duration
	for i, s := range c.shards {
		lat = append(lat, watchers[i].Latencies(b, s.DB("rpo")+".writes", acks[i])...)
	}
	slices.Sort(lat)
	out.p50, out.p99, out.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	out.load += " / " + benchtool.LoadAverage()
	return out
}

func ms(d time.Duration) string { return fmt.Sprintf("%d ms", d.Milliseconds()) }
