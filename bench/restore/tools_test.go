package restorebench

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

// mongoTools returns the directory holding mongodump and mongorestore
// 100.11.0, building them into the shared cache (under a file lock) when
// missing: ~2 minutes.
func mongoTools(tb testing.TB) string {
	cache, err := testserver.CacheDir()
	if err != nil {
		tb.Fatal(err)
	}
	dir := filepath.Join(cache, "mongo-tools")
	ready := func() bool {
		for _, b := range []string{"mongodump", "mongorestore"} {
			if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
				return false
			}
		}
		return true
	}
	if ready() {
		return dir
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		tb.Fatal(err)
	}
	lock := flock.New(filepath.Join(cache, "mongo-tools.lock"))
	if err := lock.Lock(); err != nil {
		tb.Fatal(err)
	}
	defer lock.Unlock()
	if ready() {
		return dir
	}
	script := filepath.Join(moduleRoot(tb), "..", "shared", "tools", "mongo-tools", "build.sh")
	if v := os.Getenv("REWIND_MONGO_TOOLS_BUILD"); v != "" {
		script = v
	}
	out, err := exec.Command(script, dir).CombinedOutput()
	if err != nil {
		tb.Fatalf("build mongo-tools with %s (set REWIND_MONGO_TOOLS_BUILD to the script): %v\n%s", script, err, out)
	}
	return dir
}

// run is one measured tool run.
type run struct {
	name           string
	elapsed        time.Duration
	maxRSS         int64 // bytes
	stdout, stderr string
}

// measure runs a command and records its wall time and peak RSS.
func measure(ctx context.Context, tb testing.TB, name string, argv ...string) run {
	var outb, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &outb, &errb
	start := time.Now()
	if err := cmd.Run(); err != nil {
		tb.Fatalf("%s: %v\n%s\n%s", name, err, outb.String(), errb.String())
	}
	r := run{name: name, elapsed: time.Since(start), stdout: outb.String(), stderr: errb.String()}
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
	rss := "-"
	if r.maxRSS > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(r.maxRSS)/(1<<20))
	}
	return fmt.Sprintf("%-34s %8.1f s %7.2f MB/s %8.0f docs/s  peak RSS %s", r.name, s, float64(size)/1e6/s, float64(docs)/s, rss)
}
