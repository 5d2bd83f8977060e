// Package testbin builds the rewind command once per test binary, for tests
// and benchmarks that run it as a real process (kill -9, exit codes, RSS).
package testbin

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
		dir, e := os.MkdirTemp("", "rewind-bin-")
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
