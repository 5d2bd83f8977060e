package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// runBinary runs the rewind binary and returns its exit code and stderr.
func runBinary(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(testbin.Rewind(t), args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("run rewind %s: %v", strings.Join(args, " "), err)
	}
	return cmd.ProcessState.ExitCode(), stderr.String()
}

// Each documented exit code, from the binary as scripts and cron see it.
func TestExitCodesOfTheBinary(t *testing.T) {
	dir, r, _ := retentionRepo(t)
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("retention:\n  restore_windw: 3d\n"), 0o600)
	verifyDamaged := func() (int, string) {
		var chunk string
		filepath.Walk(filepath.Join(dir, "data"), func(p string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() && chunk == "" {
				chunk = p
			}
			return err
		})
		if err := os.Remove(chunk); err != nil {
			t.Fatal(err)
		}
		return runBinary(t, "verify", "--repo", dir)
	}
	lockedPrune := func() (int, string) {
		lock, err := r.Lock(context.Background(), repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent"})
		if err != nil {
			t.Fatal(err)
		}
		defer unlockWithin(t, lock)
		return runBinary(t, "prune", "--repo", dir)
	}
	for _, tc := range []struct {
		name  string
		run   func() (int, string)
		code  int
		wants []string
	}{
		{"usage: unknown command", func() (int, string) { return runBinary(t, "frobnicate") }, 2, []string{"unknown command"}},
		{"usage: unknown flag", func() (int, string) { return runBinary(t, "status", "--repo", dir, "--identity", "k") }, 2, []string{"unknown flag"}},
		{"usage: negative duration", func() (int, string) { return runBinary(t, "prune", "--repo", dir, "--grace", "-1h") }, 2, []string{"negative"}},
		{"bad config: agent", func() (int, string) { return runBinary(t, "agent", "--config", bad) }, 2, []string{"restore_windw"}},
		{"bad config: prune", func() (int, string) { return runBinary(t, "prune", "--repo", dir, "--config", bad) }, 2, []string{"restore_windw"}},
		{"missing config", func() (int, string) {
			return runBinary(t, "agent", "--config", filepath.Join(t.TempDir(), "none.yaml"))
		}, 2, []string{"none.yaml"}},
		{"invalid config", func() (int, string) { return runBinary(t, "agent", "--repo", dir) }, 2, []string{"source is not set"}},
		{"no repository", func() (int, string) { return runBinary(t, "status", "--repo", t.TempDir()) }, 10, []string{"no rewind repository", "rewind init"}},
		{"locked", lockedPrune, 11, []string{"locked", "rewind unlock"}},
		{"verify could not run", func() (int, string) {
			return runBinary(t, "verify", "--repo", dir, "--restore-to", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")
		}, 1, []string{"--restore-to"}},
		{"verify found problems", verifyDamaged, 3, []string{"verify found 1 problem"}},
	} {
		code, stderr := tc.run()
		if code != tc.code {
			t.Errorf("%s: exit code %d, want %d; stderr: %s", tc.name, code, tc.code, stderr)
		}
		for _, w := range tc.wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr %q does not mention %q", tc.name, stderr, w)
			}
		}
	}
}

func unlockWithin(t *testing.T, lock *repo.Lock) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := lock.Unlock(ctx); err != nil {
		t.Error(err)
	}
}

// silentServer accepts connections and never answers: a command connecting
// to it blocks until it is stopped. accepted is closed at the first one.
func silentServer(t *testing.T) (addr string, accepted <-chan struct{}) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	done := make(chan struct{})
	var conns []net.Conn
	go func() {
		defer close(done)
		for first := true; ; first = false {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
			if first {
				close(ch)
			}
		}
	}()
	t.Cleanup(func() {
		l.Close()
		<-done
		for _, c := range conns {
			c.Close()
		}
	})
	return l.Addr().String(), ch
}

// A command stopped by SIGINT or SIGTERM exits 130; the agent stopped by
// SIGTERM shuts down cleanly and exits 0, as documented.
func TestExitCodeOnSignal(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	for _, tc := range []struct {
		name string
		args []string
		sig  syscall.Signal
		code int
	}{
		{"snapshot, SIGINT", []string{"snapshot", "--repo", dir}, syscall.SIGINT, 130},
		{"snapshot, SIGTERM", []string{"snapshot", "--repo", dir}, syscall.SIGTERM, 130},
		{"agent, SIGTERM", []string{"agent", "--repo", dir, "--spool-dir", t.TempDir(), "--api-listen", ""}, syscall.SIGTERM, 0},
	} {
		addr, accepted := silentServer(t)
		// connectTimeoutMS bounds a driver race: Disconnect after a
		// cancelled connect can wait for the monitor's handshake to time out.
		source := "mongodb://" + addr + "/?directConnection=true&serverSelectionTimeoutMS=60000&connectTimeoutMS=2000"
		cmd := exec.Command(testbin.Rewind(t), append(tc.args, "--source", source)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// The command is connecting to the source: well past startup.
		select {
		case <-accepted:
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s: never connected to the source; stderr: %s", tc.name, stderr.String())
		}
		cmd.Process.Signal(tc.sig)
		cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != tc.code {
			t.Errorf("%s: exit code %d, want %d; stderr: %s", tc.name, code, tc.code, stderr.String())
		}
		if tc.code == 130 && !strings.Contains(stderr.String(), "interrupted") {
			t.Errorf("%s: stderr does not say it was interrupted: %s", tc.name, stderr.String())
		}
	}
}

// With --log-format json (or the agent's log.format: json) every line on
// stderr is one JSON object, the final error too: level ERROR, the message
// and the exit code.
func TestJSONErrorLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none")
	cfg := filepath.Join(t.TempDir(), "rewind.yaml")
	os.WriteFile(cfg, []byte("source: mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300\nrepo: "+missing+"\nlog:\n  format: json\napi:\n  listen: \"\"\n"), 0o600)
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"--log-format", "json", "status", "--repo", missing}, 10, "no rewind repository"},
		{[]string{"--log-format", "json", "agent", "--source", "garbage", "--repo", missing}, 2, "not a MongoDB connection string"},
		{[]string{"agent", "--config", cfg}, 10, "no rewind repository"},
	} {
		code, stderr := runBinary(t, tc.args...)
		if code != tc.code {
			t.Fatalf("%v: exit %d, want %d: %s", tc.args, code, tc.code, stderr)
		}
		var last struct {
			Level    string `json:"level"`
			Msg      string `json:"msg"`
			ExitCode int    `json:"exit_code"`
		}
		for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
			if err := json.Unmarshal([]byte(line), &last); err != nil {
				t.Errorf("%v: a stderr line is not JSON: %q", tc.args, line)
			}
		}
		if last.Level != "ERROR" || !strings.Contains(last.Msg, tc.msg) || last.ExitCode != tc.code {
			t.Errorf("%v: last line %+v, want level ERROR, %q, exit_code %d", tc.args, last, tc.msg, tc.code)
		}
	}
}

// A mistyped --repo given to a command that only reads is refused (exit
// 10) and leaves nothing behind: no directory is created for it. init
// creates it.
func TestMissingRepoLeavesNoDirectory(t *testing.T) {
	base := t.TempDir()
	missing := filepath.Join(base, "typo", "repo")
	for _, args := range [][]string{
		{"status", "--repo", missing},
		{"list", "--repo", "file://" + missing},
		{"oplog", "--repo", missing, "--summary"},
		{"history", "--repo", missing, "--ns", "a.b", "--id", "1"},
		{"export", "--repo", missing, "--to", "latest", "--format", "archive", "--out", "-"},
		{"verify", "--repo", missing},
	} {
		code, stderr := runBinary(t, args...)
		wantFailure(t, code, stderr, 10, "no rewind repository")
		if _, err := os.Stat(filepath.Join(base, "typo")); !os.IsNotExist(err) {
			t.Fatalf("rewind %s left %s behind (%v)", args[0], filepath.Join(base, "typo"), err)
		}
	}
	if code, stderr := runBinary(t, "init", "--repo", missing); code != 0 {
		t.Fatalf("init into a new directory: exit %d: %s", code, stderr)
	}
	if code, stderr := runBinary(t, "status", "--repo", missing); code != 0 {
		t.Fatalf("status after init: exit %d: %s", code, stderr)
	}
}
