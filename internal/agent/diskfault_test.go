package agent_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testdisk"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A disk fault under the agent: the filesystem of its spool or of its
// file:// repository fills up or turns read-only while a workload writes.
type diskFault struct {
	name string
	// mount is the tmpfs the fault hits.
	mount string
	// start makes the fault; it returns when the fault began and the
	// function that ends it.
	start func(t *testing.T) (began time.Time, end func())
	// alert must fire during the fault and resolve after it.
	alert string
	// logs are what the agent's error must say (the path, the cause,
	// the remedy).
	logs []string
	// also is logged during the fault too, when set.
	also string
	// status, when set, must be in the heartbeat's error (what `rewind
	// status` shows) during the fault: the repository takes writes then.
	status string
}

// The agent's spool and its file:// repository each live on a small tmpfs.
// While a workload writes, the spool's filesystem fills up, then turns
// read-only, then the repository's fills up, each for a few seconds. Each
// fault is logged naming the path, the cause and the remedy, its alert
// fires, and once the space (or write access) is back capture catches up
// by itself. At the end the repository holds the source's oplog byte for
// byte with no gap, holds no partial file, and restores to random marks
// are exact.
func TestCaptureSurvivesDiskFaults(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	spool := testdisk.Tmpfs(t, "spool", 4<<20)
	repoDir := testdisk.Tmpfs(t, "repo", 32<<20)
	url := "file://" + filepath.Join(repoDir, "r")
	initRepo(t, url)
	cfg := agentConfig(t, srv, url)
	cfg.Capture.SpoolDir = filepath.Join(spool, "s")
	cfg.Capture.SpoolMaxBytes = 64 << 20 // above the tmpfs: the disk fills first
	cfg.Snapshot.Every = 0               // one snapshot, by hand, after the workload made its collections
	cfg.Alerts.CheckInterval = config.Duration(250 * time.Millisecond)
	cfg.Alerts.StorageErrorsFor = config.Duration(time.Second)
	logs := &logLines{t: t}
	a := startAgentLogging(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	waitFor(t, 30*time.Second, "the agent's start", func() bool { return a.Alerts() != nil })

	r := openRepo(t, url)
	w := startFaultWorkload(t, srv, r)
	faults := []diskFault{
		{name: "spool filesystem full", mount: spool, start: func(t *testing.T) (time.Time, func()) { return time.Now(), testdisk.Fill(t, spool) },
			alert: alert.SpoolUnwritable, logs: []string{"cannot write the spool", cfg.Capture.SpoolDir, "no space left on device", "is full: free space on it"},
			status: "capture paused: write spool " + cfg.Capture.SpoolDir},
		// Segments wait in the spool (the repository is full) when it
		// turns read-only; then the repository has room again: uploads
		// go on though their files cannot be removed.
		{name: "spool filesystem read-only", mount: spool, start: func(t *testing.T) (time.Time, func()) {
			freeRepo := testdisk.Fill(t, repoDir)
			waitFor(t, 20*time.Second, "segments waiting in the spool", func() bool { return spooled(t, cfg.Capture.SpoolDir) > 0 })
			began, end := time.Now(), testdisk.ReadOnly(t, spool)
			freeRepo()
			return began, end
		}, alert: alert.SpoolUnwritable, logs: []string{"cannot write the spool", cfg.Capture.SpoolDir, "read-only file system", "remount it read-write"},
			also: "uploaded segment stays in the spool", status: "capture paused: write spool " + cfg.Capture.SpoolDir},
		{name: "repository filesystem full", mount: repoDir, start: func(t *testing.T) (time.Time, func()) { return time.Now(), testdisk.Fill(t, repoDir) },
			alert: alert.StorageErrors, logs: []string{"upload segment failed", filepath.Join(repoDir, "r"), "no space left on device", "is full: free space on it"}},
		{name: "repository filesystem read-only", mount: repoDir, start: func(t *testing.T) (time.Time, func()) { return time.Now(), testdisk.ReadOnly(t, repoDir) },
			alert: alert.StorageErrors, logs: []string{"upload segment failed", filepath.Join(repoDir, "r"), "read-only file system", "remount it read-write"}},
	}
	for _, f := range faults {
		runDiskFault(t, a, logs, srv, r, f)
	}
	checkAfterFaults(t, a, srv, w, url, storage.Options{}, "df")
	assertNoTempFiles(t, filepath.Join(repoDir, "r"), ".rewind-tmp-")
	assertNoTempFiles(t, cfg.Capture.SpoolDir, ".tmp-")
}

// runDiskFault makes one fault for a few seconds while the workload
// writes, checks the agent noticed it (the log, the alert), ends it, and
// checks capture catches up and the alert resolves.
func runDiskFault(t *testing.T, a *runningAgent, logs *logLines, srv *testserver.Server, r *repo.Repository, f diskFault) {
	t.Helper()
	began, end := f.start(t)
	waitFor(t, 20*time.Second, f.name+": "+f.alert+" firing", func() bool { return monitor(t, a).IsFiring(f.alert) })
	fired := time.Since(began)
	line := logs.firstAfter(began, f.logs[0])
	if line == "" {
		t.Fatalf("%s: no %q in the agent's log", f.name, f.logs[0])
	}
	for _, want := range f.logs[1:] {
		if !strings.Contains(line, want) {
			t.Errorf("%s: the agent's error does not say %q:\n%s", f.name, want, line)
		}
	}
	if f.also != "" {
		waitFor(t, 10*time.Second, fmt.Sprintf("%s: %q logged", f.name, f.also), func() bool { return monitor(t, a) != nil && logs.firstAfter(began, f.also) != "" })
	}
	if f.status != "" {
		waitFor(t, 10*time.Second, f.name+": the error in the heartbeat", func() bool {
			shards, err := r.Shards(t.Context())
			if err != nil || len(shards) != 1 {
				return false
			}
			hb, err := r.ReadHeartbeat(t.Context(), shards[0])
			return err == nil && strings.Contains(hb.Error, f.status)
		})
	}
	for time.Since(began) < 4*time.Second {
		time.Sleep(100 * time.Millisecond) // the fault lasts 4 s while the workload writes
	}
	end()
	ended := time.Now()
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, 30*time.Second)
	caughtUp := time.Since(ended)
	waitFor(t, 10*time.Second, f.name+": "+f.alert+" resolved", func() bool { return !monitor(t, a).IsFiring(f.alert) })
	t.Logf("%s: %s fired %.1f s after the fault began; capture caught up %.1f s and the alert resolved %.1f s after it ended",
		f.name, f.alert, fired.Seconds(), caughtUp.Seconds(), time.Since(ended).Seconds())
}

// monitor is the agent's alert monitor; the test fails, with the agent's
// error, if the agent has stopped.
func monitor(t *testing.T, a *runningAgent) *alert.Monitor {
	t.Helper()
	if m := a.Alerts(); m != nil {
		return m
	}
	select {
	case err := <-a.done:
		close(a.done) // for stop, in the cleanup
		t.Fatalf("the agent stopped during a disk fault: %v", err)
	case <-time.After(time.Second):
		t.Fatal("the agent has no alert monitor")
	}
	return nil
}

// assertNoTempFiles fails if a file named prefix* is left under dir.
func assertNoTempFiles(t *testing.T, dir, prefix string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), prefix) {
			return fmt.Errorf("a partial file is left: %s", p)
		}
		return nil
	})
	must(t, err)
}

// logLines passes the agent's log to the test's and keeps its lines.
type logLines struct {
	t     *testing.T
	mu    sync.Mutex
	lines []logLine
}

type logLine struct {
	at   time.Time
	text string
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	l.lines = append(l.lines, logLine{time.Now(), string(p)})
	l.mu.Unlock()
	l.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// firstAfter is the first line logged at or after at that holds s, "" if none.
func (l *logLines) firstAfter(at time.Time, s string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.lines {
		if !x.at.Before(at) && strings.Contains(x.text, s) {
			return x.text
		}
	}
	return ""
}
