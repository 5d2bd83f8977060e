package clusterbench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
)

// BenchmarkClusterSnapshot loads 3 stand-in shards and a config server,
// then in the same run takes a snapshot of each shard alone and a cluster
// snapshot of all of them, with the same --parallel, twice:
//
//   - unlimited: every shard reached directly. Three FerretDB servers
//     share this machine's cores, so this ratio is bound by the CPU, not
//     by rewind;
//   - over links: each shard reached through a Link of its own (a model
//     of shards on separate hosts, whose lines bound each copy), each at a
//     quarter of the slowest shard's unlimited copy rate (or
//     $REWIND_BENCH_LINK_KBPS kilobytes per second), so the three links
//     together ask less of the CPU than one unlimited copy used. Here the
//     cluster snapshot runs twice: with the same --parallel (which bounds
//     the copy of the whole cluster: its slots are shared by the parts)
//     and with --parallel times the shards (each shard as many copy slots
//     as alone).
//
// It reports the cluster's wall time against the slowest single shard's
// (the goal is ≤ 1.3×) and where the cluster snapshot's time went. Use
// -benchtime 1x.
func BenchmarkClusterSnapshot(b *testing.B) {
	c := startStandIn(b, 3, shardMB())
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(b.TempDir(), fmt.Sprint(i))
		free := snapshotRound(b, c, filepath.Join(dir, "unlimited"), c.inputs(), parallel)
		slowRate := free.singles[0].copyRate()
		for _, s := range free.singles {
			slowRate = min(slowRate, s.copyRate())
		}
		b.Logf("unlimited (CPU-shared):\n%s", free.table())
		b.ReportMetric(free.ratio(0), "x-slowest-shard-unlimited")

		linkRate := slowRate / 4
		if kbps := os.Getenv("REWIND_BENCH_LINK_KBPS"); kbps != "" {
			v, err := strconv.ParseFloat(kbps, 64)
			if err != nil || v <= 0 {
				b.Fatalf("REWIND_BENCH_LINK_KBPS=%q: want kilobytes per second, e.g. 500", kbps)
			}
			linkRate = v * 1000
		}
		var uris []string
		var links []*benchtool.Link
		for _, s := range c.shards {
			l := benchtool.StartLink(b, s.Host(), linkRate)
			links, uris = append(links, l), append(uris, l.MongoURI(s.URI(), s.Host()))
		}
		b.Logf("a link of %.0f kB/s per shard (the slowest shard's unlimited copy rate was %.0f kB/s; 3 links: %.0f kB/s)",
			linkRate/1000, slowRate/1000, 3*linkRate/1000)
		linked := snapshotRound(b, c, filepath.Join(dir, "links"), c.inputs(uris...), parallel, parallel*len(c.shards))
		var sent int64
		for _, l := range links {
			sent += l.Sent()
		}
		b.Logf("over links (separate-hosts model), %.1f MiB through the links in all:\n%s", mib(sent), linked.table())
		b.ReportMetric(linked.ratio(0), "x-slowest-shard-links")
		b.ReportMetric(linked.ratio(1), "x-slowest-shard-links-parallel-per-shard")
	}
}

// snapRun is one snapshot's time and where it went, from its log.
type snapRun struct {
	name  string
	wall  time.Duration
	setup time.Duration // connect, catalog, the oplog's newest entry: until "snapshot started"
	copy  time.Duration // "snapshot started" to "collections copied"
	bytes int64         // the shard's BSON copied
	// after the copy: the settle margin, the capture of the snapshot's
	// oplog range, the manifest.
	finish time.Duration
}

func (s snapRun) copyRate() float64 { return float64(s.bytes) / s.copy.Seconds() }

// clusterRun is a cluster snapshot's time and its phases.
type clusterRun struct {
	parallel int
	wall     time.Duration
	// copies: until the last part's "collections copied"; parts: until
	// every part is complete (each part's own settle margin and range
	// capture); cover: the step that proves every shard's oplog complete
	// through T, and the manifest.
	copies, parts, cover time.Duration
	// copied is when each shard's copy ended, from the start: whether
	// the parts' copies overlapped or ran one after another.
	copied []string
}

type round struct {
	singles  []snapRun
	clusters []clusterRun
	load     string
}

func (r round) slowest() time.Duration {
	var s time.Duration
	for _, x := range r.singles {
		s = max(s, x.wall)
	}
	return s
}

// ratio is cluster snapshot i's wall time over the slowest shard's alone.
func (r round) ratio(i int) float64 { return r.clusters[i].wall.Seconds() / r.slowest().Seconds() }

func (r round) table() string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "| snapshot | wall | before the copy | copy | copy rate | after the copy |\n| --- | --- | --- | --- | --- | --- |\n")
	for _, s := range r.singles {
		fmt.Fprintf(&sb, "| shard %s alone | %s | %s | %s | %.0f kB/s | %s |\n", s.name, secs(s.wall), secs(s.setup), secs(s.copy),
			s.copyRate()/1000, secs(s.finish))
	}
	for i, cl := range r.clusters {
		fmt.Fprintf(&sb, "| cluster (3 shards + config server), --parallel %d | %s (%.2f× the slowest shard) | | %s (to the last part's copy end; %s) | | parts done at %s; oplogs proven through T + manifest %s |\n",
			cl.parallel, secs(cl.wall), r.ratio(i), secs(cl.copies), strings.Join(cl.copied, ", "), secs(cl.parts), secs(cl.cover))
	}
	fmt.Fprintf(&sb, "(%s)\nload average before / after: %s", settleNote, r.load)
	return sb.String()
}

// snapshotRound takes each shard's snapshot alone, then the cluster's,
// each into a repository of its own under dir.
func snapshotRound(b *testing.B, c *standIn, dir string, in cluster.Inputs, clusterParallel ...int) round {
	ctx := context.Background()
	d, err := source.OpenDeployment(ctx, in)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close(ctx)
	rd := round{load: benchtool.LoadAverage()}
	for i, m := range d.Members[:len(c.shards)] {
		_, r := newRepo(b, filepath.Join(dir, m.Name), repo.Source{})
		lb := &logBook{}
		t0 := time.Now()
		if _, err := snapshot.Take(ctx, m.Source, r, snapshot.Options{Parallel: parallel, Log: lb.logger()}); err != nil {
			b.Fatal(err)
		}
		s := snapRun{name: m.Name, wall: time.Since(t0), bytes: shardBytes(c, i)}
		started, _ := lb.at("snapshot started", "")
		copied, _ := lb.at("collections copied", "")
		s.setup, s.copy, s.finish = started.Sub(t0), copied.Sub(started), t0.Add(s.wall).Sub(copied)
		rd.singles = append(rd.singles, s)
	}
	for _, p := range clusterParallel {
		rd.clusters = append(rd.clusters, clusterSnapshot(b, d, filepath.Join(dir, fmt.Sprint("cluster-", p)), p))
	}
	rd.load += " / " + benchtool.LoadAverage()
	return rd
}

// clusterSnapshot takes d's cluster snapshot with --parallel p into a
// repository under dir and tells its phases apart from its log.
func clusterSnapshot(b *testing.B, d *source.Deployment, dir string, p int) clusterRun {
	_, r := newRepo(b, dir, d.Record())
	lb := &logBook{}
	t0 := time.Now()
	m, err := snapshot.TakeCluster(context.Background(), d, r, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: p, Log: lb.logger()}})
	if err != nil {
		b.Fatal(err)
	}
	cl := clusterRun{parallel: p, wall: time.Since(t0)}
	if got := strings.Join(m.Shards(), ","); got != "config,s0,s1,s2" {
		b.Fatalf("cluster snapshot parts %s, want config,s0,s1,s2", got)
	}
	parts, ok := lb.at(partsCopiedMsg, "")
	if !ok {
		b.Fatalf("the cluster snapshot did not log %q: its phases cannot be told apart", partsCopiedMsg)
	}
	cl.copies = lb.last("collections copied").Sub(t0)
	for _, mem := range d.Members {
		if at, ok := lb.at("collections copied", mem.Name); ok {
			cl.copied = append(cl.copied, fmt.Sprintf("%s %s", mem.Name, secs(at.Sub(t0))))
		}
	}
	cl.parts = parts.Sub(t0)
	cl.cover = t0.Add(cl.wall).Sub(parts)
	return cl
}

// partsCopiedMsg is what TakeCluster logs once every part is stored,
// before it proves every shard's oplog complete through T.
const partsCopiedMsg = "cluster parts copied; making every shard's oplog durable through the cluster's point"

// settleNote says what the settle margin costs, for the logs.
var settleNote = fmt.Sprintf("each part waits the settle margin (%s) after its copy before reading its end", oplog.SettleMargin)

func shardBytes(c *standIn, i int) int64 {
	var n int64
	for _, bt := range c.data[i] {
		for _, d := range bt.Docs {
			n += int64(len(d))
		}
	}
	return n
}
