// Package testbin builds the rewind command once per test binary, for tests
// and benchmarks that run it as a real process (kill -9, exit codes, RSS).
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
)

var (
	once sync.Once
	path string
	out  []byte
	err  error
)

// Rewind returns the path of a freshly built rewind binary, failing the test
// if it does not build.
func Rewind(t testing.TB) string {
	t.Helper()
	once.Do(func() {
		removeStale()
		dir, e := os.MkdirTemp("", fmt.Sprintf("rewind-bin-%d-", os.Getpid()))
		if e != nil {
			err = e
			return
		}
		path = filepath.Join(dir, "rewind")
		out, err = exec.Command("go", "build", "-o", path, "github.com/rewind-backup/rewind/cmd/rewind").CombinedOutput()
	})
	if err != nil {
		t.Fatalf("build rewind: %v\n%s", err, out)
	}
	return path
}

// removeStale deletes the binaries earlier test processes built (each is
// ~75 MB and a test process cannot remove its own at exit): those whose
// directory names a process that is gone.
func removeStale() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "rewind-bin-*-*"))
	for _, d := range dirs {
		var pid int
		if _, err := fmt.Sscanf(filepath.Base(d), "rewind-bin-%d-", &pid); err != nil || pid <= 0 {
			continue
		}
		if syscall.Kill(pid, 0) == nil || pid == os.Getpid() {
			continue // still running (or reused by a live process: leave it)
		}
		_ = os.RemoveAll(d)
	}
}
