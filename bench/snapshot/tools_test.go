package snapshotbench

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"

	"github.com/rewind-backup/rewind/internal/testserver"
)

// moduleRoot is the rewind module's root directory.
func moduleRoot(tb testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// buildRewind builds the rewind command into dir.
func buildRewind(tb testing.TB, dir string) string {
	bin := filepath.Join(dir, "rewind")
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/rewind")
	cmd.Dir = moduleRoot(tb)
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build rewind: %v\n%s", err, out)
	}
	return bin
}

// mongodump returns the mongodump binary, building it into the shared cache
// (under a file lock) when it is missing: ~2 minutes.
func mongodump(tb testing.TB) string {
	cache, err := testserver.CacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(cache, "mongo-tools")
	bin := filepath.Join(dir, "mongodump")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		tb.Fatal(err)
	}
	lock := flock.New(filepath.Join(cache, "mongo-tools.lock"))
	if err := lock.Lock(); err != nil {
		tb.Fatal(err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	script := filepath.Join(moduleRoot(tb), "..", "shared", "tools", "mongo-tools", "build.sh")
	if v := os.Getenv("REWIND_MONGO_TOOLS_BUILD"); v != "" {
		script = v
	}
	out, err := exec.Command(script, dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("build mongodump with %s (set REWIND_MONGO_TOOLS_BUILD to the script): %v\n%s", script, err, out)
	}
	return bin
}

// run is one measured tool run.
type run struct {
	name    string
	elapsed time.Duration
	maxRSS  int64 // bytes
	stored  int64 // bytes on disk
	stderr  string
}

// measure runs a command and records its wall time and peak RSS.
func measure(ctx context.Context, tb testing.TB, name string, argv ...string) run {
	var errb bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stderr = &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s: %v\n%s", name, err, errb.String())
	}
	r := run{name: name, elapsed: time.Since(start), stderr: errb.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10 // Linux reports KiB
	}
	return r
}

// diskBytes sums the sizes of the files under path.
func diskBytes(tb testing.TB, path string) int64 {
	var n int64
	err := filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err == nil {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return n
}

func (r run) row(docs int, size int64) string {
	s := r.elapsed.Seconds()
	return fmt.Sprintf("%-28s %8.1fs %8.2f MB/s %9.0f docs/s %9.1f MiB stored %7.1f MiB peak RSS",
		r.name, s, float64(size)/1e6/s, float64(docs)/s, float64(r.stored)/(1<<20), float64(r.maxRSS)/(1<<20))
}
