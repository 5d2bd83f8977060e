// Package snapshotbench compares `rewind snapshot` with mongodump on the same
// data in the same run, and measures rewind's own cost with the server taken
// out. Run it with ./run.sh (or the go test line in it).
package snapshotbench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// dataMB is the data set size: $REWIND_BENCH_MB, default 64 (FerretDB reads
// a few MB/s, so larger sets take minutes per tool).
func dataMB() int {
	if n, err := strconv.Atoi(os.Getenv("REWIND_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 64
}

const benchColls = 4

// BenchmarkSnapshotVsMongodump loads the data set once and runs each tool
// once per iteration on it (use -benchtime 1x).
func BenchmarkSnapshotVsMongodump(b *testing.B) {
	dump := mongodump(b)
	tmp := b.TempDir()
	rewind := buildRewind(b, tmp)
	srv := testserver.Start(b)
	db := srv.DB("bench")
	t0 := time.Now()
	docs, size := load(b, srv.Client(), db, benchColls, dataMB())
	b.Logf("loaded %d documents, %.1f MiB in %d collections in %s", docs, float64(size)/(1<<20), benchColls, time.Since(t0).Round(time.Second))
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		dir := filepath.Join(tmp, strconv.Itoa(i))
		repoURL := "file://" + filepath.Join(dir, "repo")
		measure(ctx, b, "rewind init", rewind, "init", "--repo", repoURL)
		stopAgent := func() {}
		if os.Getenv("REWIND_BENCH_AGENT") != "" {
			stopAgent = besideAgent(ctx, b, rewind, srv.URI(), repoURL, dir)
		}
		snap := measure(ctx, b, "rewind snapshot --parallel 4", rewind, "--log-format", "json", "snapshot",
			"--source", srv.URI(), "--repo", repoURL, "--ns", db+".*", "--parallel", "4")
		snap.Stored = diskBytes(b, filepath.Join(dir, "repo", "data"))
		copyPhase := phase(snap.Stderr, "snapshot started", "collections copied")
		if os.Getenv("REWIND_BENCH_REWIND_ONLY") != "" {
			stopAgent()
			report(b, docs, size, []run{snap})
			b.Logf("rewind snapshot: copy phase %s", copyPhase.Round(10*time.Millisecond))
			continue
		}
		plain := measure(ctx, b, "mongodump --archive", dump, "--quiet", "--uri", srv.URI(), "--db", db, "--archive="+filepath.Join(dir, "a"))
		plain.Stored = fileSize(b, filepath.Join(dir, "a"))
		gz := measure(ctx, b, "mongodump --archive --gzip", dump, "--quiet", "--uri", srv.URI(), "--db", db, "--gzip", "--archive="+filepath.Join(dir, "a.gz"))
		gz.Stored = fileSize(b, filepath.Join(dir, "a.gz"))
		stopAgent()
		report(b, docs, size, []run{snap, plain, gz})
		b.Logf("rewind snapshot log:\n%s", snap.Stderr)
		b.Logf("rewind snapshot: %s total, of which copying the collections %s (%.2f MB/s) and, after it, making the oplog range durable %s (the settle delay, and without an agent the end of the one full read of FerretDB's oplog that runs during the copy); load average %s",
			snap.Elapsed.Round(10*time.Millisecond), copyPhase.Round(10*time.Millisecond), float64(size)/1e6/copyPhase.Seconds(),
			phase(snap.Stderr, "collections copied", "snapshot complete").Round(10*time.Millisecond), benchtool.LoadAverage())
		b.ReportMetric(plain.Elapsed.Seconds()/snap.Elapsed.Seconds(), "rewind/mongodump-speed")
		b.ReportMetric(float64(size)/1e6/snap.Elapsed.Seconds(), "rewind-MB/s")
		b.ReportMetric(float64(size)/1e6/plain.Elapsed.Seconds(), "mongodump-MB/s")
		b.ReportMetric(float64(size)/1e6/gz.Elapsed.Seconds(), "mongodump-gzip-MB/s")
		b.ReportMetric(float64(snap.MaxRSS)/(1<<20), "rewind-peak-RSS-MiB")
	}
}

func report(b *testing.B, docs int, size int64, runs []run) {
	lines := []string{"data: " + strconv.Itoa(docs) + " documents, " + strconv.FormatFloat(float64(size)/(1<<20), 'f', 1, 64) + " MiB of BSON in 4 collections"}
	for _, r := range runs {
		lines = append(lines, row(r, docs, size))
	}
	b.Log("\n" + strings.Join(lines, "\n"))
}

func fileSize(b *testing.B, path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}

// phase is the time between two JSON log messages in stderr.
func phase(stderr, from, to string) time.Duration {
	var t1, t2 time.Time
	for _, line := range strings.Split(stderr, "\n") {
		var rec struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		switch rec.Msg {
		case from:
			t1 = rec.Time
		case to:
			t2 = rec.Time
		}
	}
	if t1.IsZero() || t2.IsZero() {
		return 0
	}
	return t2.Sub(t1)
}

// BenchmarkEncodeStore is rewind's own cost with the server taken out: the
// same documents, already in memory, packed into 8 MiB chunks, compressed,
// checksummed and stored in a file repository by 4 workers.
func BenchmarkEncodeStore(b *testing.B) {
	var colls [][]bson.Raw
	var size int64
	for c := range benchColls {
		docs := genCollection(c, dataMB()<<20/benchColls)
		for _, d := range docs {
			size += int64(len(d))
		}
		colls = append(colls, docs)
	}
	ctx := context.Background()
	b.SetBytes(size)
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		dir := filepath.Join(b.TempDir(), strconv.Itoa(i))
		st, err := storage.Open(ctx, "file://"+dir)
		if err != nil {
			b.Fatal(err)
		}
		r, err := repo.Init(ctx, st, repo.InitOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		var wg sync.WaitGroup
		for c, docs := range colls {
			wg.Go(func() {
				for n, chunk := range benchtool.Chunks(docs, 8<<20) {
					if _, err := r.WriteChunk(ctx, "bench", "s1", "c"+strconv.Itoa(c), n, chunk); err != nil {
						b.Error(err)
						return
					}
				}
			})
		}
		wg.Wait()
		b.StopTimer()
		if i == 0 {
			b.ReportMetric(float64(diskBytes(b, filepath.Join(dir, "data")))/(1<<20), "stored-MiB")
		}
		st.Close()
		b.StartTimer()
	}
}

// besideAgent starts `rewind agent` on the repository (its default
// settings: a heartbeat every 10 s) and returns once the agent has taken
// its base snapshot and its heartbeat proves the oplog's newest entry as
// it is now (repo.PolledOplog), as a long-running agent's does on an idle
// source: both tools then run beside it. It returns the agent's stop.
func besideAgent(ctx context.Context, b *testing.B, rewind, uri, url, dir string) func() {
	agent := exec.Command(rewind, "agent", "--source", uri, "--repo", url, "--spool-dir", filepath.Join(dir, "spool"),
		"--api-listen", "", "--log-level", "warn")
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		b.Fatal(err)
	}
	stop := func() { _ = agent.Process.Kill(); _ = agent.Wait() }
	b.Cleanup(stop)
	r := benchtool.OpenRepo(b, url)
	src, err := source.Connect(ctx, uri)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close(ctx)
	began := time.Now()
	for deadline := time.Now().Add(5 * time.Minute); ; time.Sleep(200 * time.Millisecond) {
		snaps, _ := r.ListSnapshots(ctx, src.Shard())
		hb, err := r.ReadHeartbeat(ctx, src.Shard())
		mark, merr := src.MarkOplog(ctx)
		if len(snaps) > 0 && err == nil && merr == nil && hb.Polled != nil &&
			hb.Polled.Count == mark.Count && hb.Polled.Oldest == mark.Oldest && !hb.LastDurable.Before(hb.Polled.Newest) {
			b.Logf("the agent took its base snapshot and proved the oplog's newest entry %s in %s", hb.Polled.Newest, time.Since(began).Round(time.Second))
			return stop
		}
		if time.Now().After(deadline) {
			b.Fatalf("within 5 minutes the agent took no base snapshot or its heartbeat proved no newest entry (%+v)", hb)
		}
	}
}
