package capture

import (
	"context"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// BenchmarkRPO100 measures, at 100 writes/s, the time from a write's
// acknowledgement to the moment its oplog entry is durable in the
// repository, with the agent's default settings.
func BenchmarkRPO100(b *testing.B) { benchRPO(b, 1000, 100) }

// BenchmarkRPO2 is the same at 2 writes/s: a quiet source, between whose
// writes a FerretDB source's polls find nothing (and slow down).
func BenchmarkRPO2(b *testing.B) { benchRPO(b, 60, 2) }

// BenchmarkRPOMax is the same with writes as fast as the server takes them.
func BenchmarkRPOMax(b *testing.B) { benchRPO(b, 2000, 0) }

func benchRPO(b *testing.B, writes int, rate float64) {
	for i := 0; i < b.N; i++ {
		r := runRPO(b, writes, rate)
		b.ReportMetric(r.p50.Seconds()*1000, "p50-ms")
		b.ReportMetric(r.p99.Seconds()*1000, "p99-ms")
		b.ReportMetric(r.max.Seconds()*1000, "max-ms")
		b.ReportMetric(r.writesPerSec, "writes/s")
		b.ReportMetric(r.cpu, "agent-cpu-%")
		b.ReportMetric(float64(r.rssKB)/1024, "agent-peak-RSS-MiB")
		b.Logf("%d writes at %.0f/s: RPO p50 %v p99 %v max %v; agent CPU %.1f%% of one core, peak RSS %d MiB",
			writes, r.writesPerSec, r.p50, r.p99, r.max, r.cpu, r.rssKB/1024)
	}
}

type rpoResult struct {
	p50, p99, max time.Duration
	writesPerSec  float64
	cpu           float64
	rssKB         int64
}

func runRPO(b *testing.B, writes int, rate float64) rpoResult {
	srv := testserver.Start(b)
	url := "file://" + filepath.Join(b.TempDir(), "repo")
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{})
	if err != nil {
		b.Fatal(err)
	}
	agent := benchtool.StartAgent(b, "--source", srv.URI(), "--repo", url,
		"--spool-dir", filepath.Join(b.TempDir(), "spool"), "--log-level", "warn")
	time.Sleep(time.Second) // agent connected and tailing

	w := &benchtool.SegmentWatcher{R: r, Shard: "ferretdb"}
	wctx, stopWatch := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.Run(wctx) })

	cpu0 := benchtool.ProcCPU(b, agent.Process.Pid)
	coll := srv.Client().Database(srv.DB("rpo")).Collection("writes")
	acks := make([]time.Time, writes)
	start := time.Now()
	for i := range writes {
		if rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(i) / rate * float64(time.Second)))))
		}
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: strings.Repeat("x", 100)}}); err != nil {
			b.Fatal(err)
		}
		acks[i] = time.Now()
	}
	elapsed := time.Since(start)
	w.WaitDurable(b, benchtool.NewestEntry(b, srv.URI()), 30*time.Second)
	stopWatch()
	wg.Wait()
	cpu := (benchtool.ProcCPU(b, agent.Process.Pid) - cpu0).Seconds() / time.Since(start).Seconds() * 100
	rss := benchtool.ProcMemory(agent.Process.Pid, "VmHWM") >> 10

	lat := w.Latencies(b, srv.DB("rpo")+".writes", acks)
	slices.Sort(lat)
	return rpoResult{p50: lat[len(lat)/2], p99: lat[len(lat)*99/100], max: lat[len(lat)-1],
		writesPerSec: float64(writes) / elapsed.Seconds(), cpu: cpu, rssKB: rss}
}
