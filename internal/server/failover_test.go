package server_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/server"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// serverProcess is a `rewind server` process started by a test.
type serverProcess struct {
	*fleet
	cmd *exec.Cmd
}

var listening = regexp.MustCompile(`msg="api listening" addr=(\S+)`)

// startServerProcess runs `rewind server --config path` and waits until
// its API listens.
func startServerProcess(t *testing.T, path string) *serverProcess {
	t.Helper()
	cmd := exec.Command(testbin.Rewind(t), "server", "--config", path)
	stderr, err := cmd.StderrPipe()
	must(t, err)
	must(t, cmd.Start())
	p := &serverProcess{cmd: cmd}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			if m := listening.FindStringSubmatch(line); m != nil {
				addr <- m[1]
			}
			t.Logf("[pid %d] %s", cmd.Process.Pid, line)
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	select {
	case a := <-addr:
		p.fleet = &fleet{t: t, addr: a}
	case <-time.After(60 * time.Second):
		t.Fatal("rewind server did not listen within 60 s")
	}
	return p
}

// Two rewind server processes with the same file share one deployment:
// one captures, the other stands by; kill -9 of the holder hands the
// deployment over within the lock's stale time plus one refresh, every
// mark before and after the kill restores exactly, and the repository's
// segment chain shows one writer at every moment (no overlap, no hole, no
// gap).
func TestFailoverAfterKill9(t *testing.T) {
	src := testserver.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "server.yaml")
	const stale, refresh = 4 * time.Second, time.Second
	file := strings.Replace(header(filepath.Join(dir, "state")), "lock: {refresh: 1s, stale_after: 3s}", "lock: {refresh: 1s, stale_after: 4s}", 1) +
		entry("solo", src, dir)
	must(t, os.WriteFile(path, []byte(file), 0o600))

	p1 := startServerProcess(t, path)
	p1.waitCapturing(90*time.Second, "solo")
	p2 := startServerProcess(t, path)
	waitFor(t, 30*time.Second, "the second server stands by", func() bool {
		v := p2.list()["solo"]
		return v.State == server.StateStandby && v.Holder != nil && v.Holder.PID == p1.cmd.Process.Pid
	})

	// The workload: a snapshot after its first batch, marks all along,
	// and kill -9 of the holder half way.
	cfg := src.Workload(21)
	cfg.Prefix, cfg.Ops, cfg.Databases, cfg.Collections, cfg.BatchSize = src.DB("f"), 300, 1, 2, 10
	dbs := workload.Databases(cfg)
	rec := &oracle.Recorder{Client: src.Client(), Filter: oracle.Filter{Include: dbs}, Every: 3}
	var killed time.Time
	var tookOver time.Duration
	var wg sync.WaitGroup
	marksBeforeKill := 0
	_, err := workload.Run(t.Context(), src.Client(), cfg, func(ctx context.Context, b workload.Batch) error {
		switch {
		case b.N == 1:
			p1.snapshot("solo")
			return nil
		case b.N == 15:
			marksBeforeKill = len(rec.Marks)
			must(t, p1.cmd.Process.Kill())
			killed = time.Now()
			wg.Go(func() {
				waitFor(t, stale+refresh+10*time.Second, "the standby takes over", func() bool {
					return p2.list()["solo"].State == server.StateCapturing
				})
				tookOver = time.Since(killed)
			})
		}
		return rec.OnBatch(ctx, b)
	})
	must(t, err)
	wg.Wait()
	t.Logf("takeover %s after kill -9 (stale_after %s, refresh %s)", tookOver.Round(10*time.Millisecond), stale, refresh)
	if tookOver > stale+refresh+2*time.Second {
		t.Errorf("takeover took %s, more than stale_after %s plus one refresh %s (and 2 s of polling)", tookOver, stale, refresh)
	}
	if marksBeforeKill < 2 || len(rec.Marks)-marksBeforeKill < 2 {
		t.Fatalf("marks: %d before the kill, %d after", marksBeforeKill, len(rec.Marks)-marksBeforeKill)
	}
	last := rec.Marks[len(rec.Marks)-1]
	waitFor(t, 60*time.Second, "the new holder captures the last mark", func() bool { return p2.durable("solo", last.TS) })

	w := recorded{dbs: dbs, marks: rec.Marks}
	target := testserver.Start(t)
	for i, m := range []oracle.Mark{rec.Marks[0], rec.Marks[marksBeforeKill-1], rec.Marks[marksBeforeKill], last} {
		p2.restoreMark("solo", w, m, target, fmt.Sprintf("k%d_", i))
	}
	checkOneWriter(t, "file://"+filepath.Join(dir, "solo"))
}

// checkOneWriter reads the repository's segment chain: one timeline, no
// gap, every segment chained to the one before it and starting after it
// ends.
func checkOneWriter(t *testing.T, url string) {
	t.Helper()
	ctx := t.Context()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: url})
	must(t, err)
	shards, err := r.Shards(ctx)
	must(t, err)
	for _, shard := range shards {
		h, err := r.History(ctx, shard)
		must(t, err)
		if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
			t.Fatalf("shard %s: %d timelines, %d gaps; want one timeline and no gap across the handover", shard, len(h.Timelines), len(h.Gaps))
		}
		segs := h.Timelines[0].Segments
		for i := 1; i < len(segs); i++ {
			prev, seg := segs[i-1], segs[i]
			if !seg.First.After(prev.Last) || seg.Prev != prev.Last {
				t.Fatalf("shard %s: segment %s (first %s, prev %s) does not follow %s (last %s): two writers",
					shard, seg.Key, seg.First, seg.Prev, prev.Key, prev.Last)
			}
		}
		t.Logf("shard %s: %d segments chained without overlap", shard, len(segs))
	}
}

// SIGHUP makes a running rewind server read its file again: a deployment
// added there starts capturing.
func TestReloadOnSIGHUP(t *testing.T) {
	src := testserver.Start(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "server.yaml")
	must(t, os.WriteFile(path, []byte(header(filepath.Join(dir, "state"))+entry("first", src, dir)), 0o600))
	p := startServerProcess(t, path)
	p.waitCapturing(60*time.Second, "first")
	must(t, os.WriteFile(path, []byte(header(filepath.Join(dir, "state"))+entry("first", src, dir)+entry("second", src, dir)), 0o600))
	must(t, p.cmd.Process.Signal(syscall.SIGHUP))
	p.waitCapturing(60*time.Second, "first", "second")
}
