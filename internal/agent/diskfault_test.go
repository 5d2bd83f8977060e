package agent_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/storage"
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
	spool := mountTmpfs(t, "spool", 4<<20)
	repoDir := mountTmpfs(t, "repo", 32<<20)
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

	w := startFaultWorkload(t, srv, openRepo(t, url))
	faults := []diskFault{
		{name: "spool filesystem full", mount: spool, start: func(t *testing.T) (time.Time, func()) { return time.Now(), fillFS(t, spool) },
			alert: alert.SpoolUnwritable, logs: []string{"cannot write the spool", cfg.Capture.SpoolDir, "no space left on device", "is full: free space on it"}},
		// Segments wait in the spool (the repository is full) when it
		// turns read-only; then the repository has room again: uploads
		// go on though their files cannot be removed.
		{name: "spool filesystem read-only", mount: spool, start: func(t *testing.T) (time.Time, func()) {
			freeRepo := fillFS(t, repoDir)
			waitFor(t, 20*time.Second, "segments waiting in the spool", func() bool { return spooled(t, cfg.Capture.SpoolDir) > 0 })
			began, end := time.Now(), remountRO(t, spool)
			freeRepo()
			return began, end
		}, alert: alert.SpoolUnwritable, logs: []string{"cannot write the spool", cfg.Capture.SpoolDir, "read-only file system", "remount it read-write"},
			also: "uploaded segment stays in the spool"},
		{name: "repository filesystem full", mount: repoDir, start: func(t *testing.T) (time.Time, func()) { return time.Now(), fillFS(t, repoDir) },
			alert: alert.StorageErrors, logs: []string{"upload segment failed", filepath.Join(repoDir, "r"), "no space left on device", "is full: free space on it"}},
	}
	for _, f := range faults {
		runDiskFault(t, a, logs, srv, f)
	}
	checkAfterFaults(t, a, srv, w, url, storage.Options{}, "df")
	assertNoTempFiles(t, filepath.Join(repoDir, "r"), ".rewind-tmp-")
	assertNoTempFiles(t, cfg.Capture.SpoolDir, ".tmp-")
}

// runDiskFault makes one fault for a few seconds while the workload
// writes, checks the agent noticed it (the log, the alert), ends it, and
// checks capture catches up and the alert resolves.
func runDiskFault(t *testing.T, a *runningAgent, logs *logLines, srv *testserver.Server, f diskFault) {
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

// mountTmpfs mounts a tmpfs of size bytes on a new directory, unmounted
// at the end of the test; it skips the test, quoting the error, where
// mounting is refused (not root, no CAP_SYS_ADMIN in a container).
func mountTmpfs(t *testing.T, name string, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	must(t, os.Mkdir(dir, 0o700))
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("mount -t tmpfs refused (%v: %s): disk faults need a filesystem the test can fill", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fillFS fills the filesystem at dir with a file, and keeps it full (as
// another program writing there would) until the returned function
// removes the file.
func fillFS(t *testing.T, dir string) func() {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	must(t, err)
	chunk := make([]byte, 64<<10)
	fill := func() {
		for n := len(chunk); n > 0; {
			if _, err := f.Write(chunk[:n]); err != nil {
				n /= 2 // the last blocks: smaller writes
			}
		}
	}
	fill()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				fill()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		must(t, f.Close())
		must(t, os.Remove(f.Name()))
	}
}

// remountRO remounts the filesystem at dir read-only until the returned
// function makes it writable again.
func remountRO(t *testing.T, dir string) func() {
	t.Helper()
	remount := func(mode string) {
		if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
		}
	}
	remount("ro")
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to %s after remounting it read-only: %v, want EROFS", dir, err)
	}
	return func() { remount("rw") }
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
