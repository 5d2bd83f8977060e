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
	"strconv"
	"strings"
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
	if err := cmd.Start(); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	done := make(chan struct{})
	peak := make(chan int64)
	go func() { peak <- watchHWM(cmd.Process.Pid, done) }()
	err := cmd.Wait()
	elapsed := time.Since(start)
	close(done)
	r := run{name: name, elapsed: elapsed, maxRSS: <-peak, stdout: outb.String(), stderr: errb.String()}
	if err != nil {
		tb.Fatalf("%s: %v\n%s\n%s", name, err, r.stdout, r.stderr)
	}
	return r
}

// watchHWM polls the process's VmHWM (its own peak RSS) until done and
// returns the largest value seen. The rusage of wait4 is no use here: on
// exec, Linux folds the parent's peak into the child's ru_maxrss (Go starts
// children with a vfork-style clone), so a test process holding the data
// set would report its own size for every tool.
func watchHWM(pid int, done <-chan struct{}) int64 {
	var peak int64
	path := fmt.Sprintf("/proc/%d/status", pid)
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			for _, line := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
					kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
					peak = max(peak, kb<<10)
				}
			}
		}
		select {
		case <-done:
			return peak
		case <-t.C:
		}
	}
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
