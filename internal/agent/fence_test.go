package agent_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// fenceStale is the lock's stale time in the fencing test (through
// repo.EnvLockStaleAfter; refreshes every sixth of it). It is longer than
// the agent's heartbeat interval (5 s), so the paused agent wakes with a
// heartbeat due at once.
const fenceStale = 6 * time.Second

// An agent stopped with SIGSTOP past the lock's stale time, while a second
// agent takes the repository over, writes not a single object when it
// wakes: while the second agent is frozen (its lock still live), the first
// is woken and the repository's files do not change at all until the first
// has found its lock lost. Then the second goes on, and the repository holds
// the source's oplog exactly, one timeline, nothing repeated.
func TestPausedAgentWritesNothingAfterTakeover(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	dir := strings.TrimPrefix(url, "file://")
	env := []string{repo.EnvLockStaleAfter + "=" + fenceStale.String()}
	args := func(spool string) []string {
		return []string{"--source", srv.URI(), "--repo", url, "--flush-interval", "200ms", "--api-listen", "",
			"--spool-dir", filepath.Join(t.TempDir(), spool)}
	}
	// The writes stop on a flag, never by cancelling an insert in flight
	// (the server could apply it after the test read the newest entry).
	ctx := context.Background()
	var stop atomic.Bool
	stopWrites := func() { stop.Store(true) }
	writesDone := make(chan struct{})
	coll := srv.Client().Database(srv.DB("fence")).Collection("c")
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: -1}}); err != nil {
		t.Fatal(err)
	}
	go func() { // writes go on all along, so a woken agent has entries to upload
		defer close(writesDone)
		for i := 0; !stop.Load(); i++ {
			_, _ = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stopWrites(); <-writesDone }()

	first := startAgentProcessEnv(t, env, args("spool1")...)
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url) }, newestOplogTS(t, srv.Client()), 30*time.Second)
	stopQuiet(t, first, dir)
	waitLocksStale(t, url, fenceStale)

	second := startAgentProcessEnv(t, env, args("spool2")...)
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url) }, newestOplogTS(t, srv.Client()), 30*time.Second)
	stopQuiet(t, second, dir)
	frozen := time.Now()
	before := repoFiles(t, dir)
	_ = first.cmd.Process.Signal(syscall.SIGCONT)
	// The first agent wakes with its lease long past: its first write
	// attempts (the heartbeat's ticker and the capture's flush fire at
	// once) come before or with its refresh finding the lock lost.
	waitLog(t, first, "repository lock lost", fenceStale/2)
	// No event marks a write that did not happen: watch two flush
	// intervals more for a late upload to show.
	time.Sleep(2 * 200 * time.Millisecond)
	after := repoFiles(t, dir)
	if held := time.Since(frozen); held > fenceStale/2+time.Second {
		t.Fatalf("the second agent was frozen %s: its lock may have gone stale, the check proves nothing", held)
	}
	for key, sum := range after {
		if before[key] != sum {
			t.Errorf("the woken agent wrote %s after the takeover", key)
		}
	}
	for key := range before {
		if _, ok := after[key]; !ok {
			t.Errorf("the woken agent deleted %s after the takeover", key)
		}
	}
	if t.Failed() {
		t.Fatalf("first agent's log:\n%s", first.stderr)
	}
	first.kill()
	_ = second.cmd.Process.Signal(syscall.SIGCONT)
	stopWrites()
	<-writesDone
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url) }, newest, 30*time.Second)
	if code := second.terminate(t); code != 0 {
		t.Fatalf("second agent exited %d, want 0; stderr:\n%s", code, second.stderr)
	}
	got, h := repoEntries(t, url)
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap, got %d timelines, %d gaps", len(h.Timelines), len(h.Gaps))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}

// stopQuiet stops p with SIGSTOP at a moment when it has no object upload
// in flight (no temporary file in the repository): a Put already past its
// lease check when the process stops completes when it wakes, which no
// object store can fence (docs/ARCHITECTURE.md, Writer lock).
func stopQuiet(t *testing.T, p *agentProcess, dir string) {
	t.Helper()
	for range 100 {
		_ = p.cmd.Process.Signal(syscall.SIGSTOP)
		if !hasTempFile(t, dir) {
			return
		}
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("the agent always had an upload in flight")
}

func hasTempFile(t *testing.T, dir string) bool {
	found := false
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".rewind-tmp-") {
			found = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

// repoFiles maps every file of a file:// repository to its size, mtime and
// content hash.
func repoFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out[rel] = fmt.Sprintf("%s %x", info.ModTime(), sha256.Sum256(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitLocksStale waits until every lock object of the repository is older
// than stale: another process may then take the repository over.
func waitLocksStale(t *testing.T, url string, stale time.Duration) {
	t.Helper()
	ctx := context.Background()
	r := openRepo(t, url)
	deadline := time.Now().Add(3 * stale)
	for {
		locks, err := r.ListLocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		live := 0
		for _, l := range locks {
			if time.Since(l.Refreshed) <= stale {
				live++
			}
		}
		if live == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d locks still refreshed within %s after %s", live, stale, 3*stale)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits until p's log contains s.
func waitLog(t *testing.T, p *agentProcess, s string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(p.stderrString(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("agent did not log %q within %s; log:\n%s", s, within, p.stderrString())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
