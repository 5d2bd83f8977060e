package clusterbench

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// BenchmarkClusterRestore has `rewind agent` capture 3 stand-in shards
// until its base cluster snapshot is stored and every shard's oplog is
// known complete through its T (a cluster snapshot alone does not make T
// restorable: the restore reads how far each shard is complete from the
// agent's heartbeats), stops the agent, then in the same run restores the
// cluster merged into one fresh test server with `rewind restore --to T`,
// T the cluster snapshot's (the binary as a child process: its wall time
// and peak RSS), and inserts the same documents into another fresh test
// server with the raw driver (unordered insertMany, --parallel workers,
// rewind's batch sizes): the ceiling any restore can reach on this
// server. Use -benchtime 1x.
func BenchmarkClusterRestore(b *testing.B) {
	ctx := context.Background()
	c := startStandIn(b, 3, shardMB())
	d, err := source.OpenDeployment(ctx, c.inputs())
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	url, r := newRepo(b, dir, d.Record())
	d.Close(ctx)
	t0 := time.Now()
	agent := benchtool.StartAgent(b, append(c.args(), "--repo", url, "--spool-dir", filepath.Join(dir, "spool"),
		"--api-listen", "", "--log-level", "warn")...)
	m := waitClusterSnapshot(b, r, 30*time.Minute)
	for _, n := range c.names {
		waitCovered(b, r, n, m.T, 2*time.Minute)
	}
	_ = agent.Process.Kill()
	_ = agent.Wait()
	b.Logf("the agent's base cluster snapshot %s (parts %v, T %s), every shard's oplog durable through T, after %s",
		m.ID, m.Shards(), m.T, time.Since(t0).Round(10*time.Millisecond))
	bin := testbin.Rewind(b)
	b.ResetTimer()
	for range b.N {
		load := benchtool.LoadAverage()
		tgt := testserver.Start(b)
		rw := benchtool.Measure(ctx, b, "rewind restore --to T (merged)", bin, "restore", "--repo", url,
			"--target", tgt.URI(), "--to", m.T.String(), "--parallel", fmt.Sprint(parallel))
		checkRestored(ctx, b, c, tgt)
		tgt.Kill()

		tgt = testserver.Start(b)
		t0 := time.Now()
		for i, s := range c.shards {
			benchtool.InsertAll(ctx, b, tgt.Client(), s.DB("bench"), c.data[i], parallel)
		}
		ceil := benchtool.Run{Name: fmt.Sprintf("ceiling: raw insertMany x%d", parallel), Elapsed: time.Since(t0)}
		checkRestored(ctx, b, c, tgt)
		tgt.Kill()
		load += " / " + benchtool.LoadAverage()

		b.Logf("merged restore of 3 shards, %d documents, %.1f MiB (parallel %d):\n| restore | time | MB/s | docs/s | peak RSS |\n| --- | --- | --- | --- | --- |\n%s\n%s\nrewind reaches %.0f %% of the ceiling's rate; load average before / after: %s\nrewind restore's summary:\n%s",
			c.docs, mib(c.size), parallel, restoreRow(rw, c), restoreRow(ceil, c), 100*ceil.Elapsed.Seconds()/rw.Elapsed.Seconds(), load, summary(rw.Stdout))
		b.ReportMetric(float64(c.size)/1e6/rw.Elapsed.Seconds(), "rewind-MB/s")
		b.ReportMetric(float64(c.size)/1e6/ceil.Elapsed.Seconds(), "ceiling-MB/s")
		b.ReportMetric(rw.Elapsed.Seconds()/ceil.Elapsed.Seconds(), "rewind/ceiling")
	}
}

func restoreRow(r benchtool.Run, c *standIn) string {
	rss := "–"
	if r.MaxRSS > 0 {
		rss = fmt.Sprintf("%.1f MiB", mib(r.MaxRSS))
	}
	return fmt.Sprintf("| %s | %s | %.2f | %.0f | %s |", r.Name, secs(r.Elapsed),
		float64(c.size)/1e6/r.Elapsed.Seconds(), float64(c.docs)/r.Elapsed.Seconds(), rss)
}

// checkRestored fails b unless tgt holds every shard's collections with
// every document.
func checkRestored(ctx context.Context, b *testing.B, c *standIn, tgt *testserver.Server) {
	for i, s := range c.shards {
		want := map[string]int64{}
		for _, bt := range c.data[i] {
			want[bt.Coll] += int64(len(bt.Docs))
		}
		for coll, n := range want {
			got, err := tgt.Client().Database(s.DB("bench")).Collection(coll).CountDocuments(ctx, bson.D{})
			if err != nil {
				b.Fatal(err)
			}
			if got != n {
				b.Fatalf("shard %s: %s.%s holds %d documents after the restore, want %d", c.names[i], s.DB("bench"), coll, got, n)
			}
		}
	}
}

// summary is the lines of rewind restore's report that say where its time
// went (not its table of namespaces).
func summary(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		for _, p := range []string{"Restored from", "documents loaded", "oplog entries", "bytes read", "time spent"} {
			if strings.Contains(l, p) {
				keep = append(keep, strings.TrimSpace(l))
			}
		}
	}
	return strings.Join(keep, "\n")
}
