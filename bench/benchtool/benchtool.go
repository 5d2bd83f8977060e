// Package benchtool holds what rewind's benchmarks share: building the
// mongo-tools baseline, running a command while measuring its wall time and
// peak memory, sizing what a tool stored, and generating documents.
package benchtool

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// ModuleRoot is the rewind module's root directory.
func ModuleRoot(tb testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("runtime.Caller failed")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// MongoTools returns the directory holding mongodump and mongorestore
// 100.11.0, building them when missing (BuildMongoTools); it fails the
// benchmark when they cannot be built.
func MongoTools(tb testing.TB) string {
	dir, err := BuildMongoTools(ModuleRoot(tb))
	if err != nil {
		tb.Fatal(err)
	}
	return dir
}

// ErrNoMongoToolsScript means the script that builds mongo-tools is not
// there: shared/ is not beside the clone of the module root.
var ErrNoMongoToolsScript = errors.New("no build script for mongo-tools")

// BuildMongoTools returns the directory holding mongodump and mongorestore
// 100.11.0 in the shared test cache, building them (under a file lock,
// ~2 minutes) from the source archive beside the clone of root when
// missing: ../shared/tools/mongo-tools/build.sh, or the script
// REWIND_MONGO_TOOLS_BUILD names. Without that script the error is
// ErrNoMongoToolsScript, so a test can say why it skips.
func BuildMongoTools(root string) (string, error) {
	cache, err := testserver.CacheDir()
	if err != nil {
		return "", err
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
		return dir, nil
	}
	script := filepath.Join(root, "..", "shared", "tools", "mongo-tools", "build.sh")
	if v := os.Getenv("REWIND_MONGO_TOOLS_BUILD"); v != "" {
		script = v
	}
	if _, err := os.Stat(script); err != nil {
		return "", fmt.Errorf("%w: %s is missing and %s holds no build (set REWIND_MONGO_TOOLS_BUILD to the script, or put mongodump and mongorestore 100.11.0 there)",
			ErrNoMongoToolsScript, script, dir)
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock := flock.New(filepath.Join(cache, "mongo-tools.lock"))
	if err := lock.Lock(); err != nil {
		return "", err
	}
	defer lock.Unlock()
	if ready() {
		return dir, nil
	}
	if out, err := exec.Command(script, dir).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build mongo-tools with %s (set REWIND_MONGO_TOOLS_BUILD to the script): %v\n%s", script, err, out)
	}
	return dir, nil
}

// EnvInt reads a benchmark knob: the environment variable name as a whole
// number of at least 0, or def.
func EnvInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n >= 0 {
		return n
	}
	return def
}

// Run is one measured command.
type Run struct {
	Name           string
	Elapsed        time.Duration
	MaxRSS         int64 // bytes
	Stored         int64 // bytes the tool stored, when the caller sets it
	Stdout, Stderr string
}

// Measure runs a command and records its wall time and peak RSS; a failing
// command fails the benchmark.
func Measure(ctx context.Context, tb testing.TB, name string, argv ...string) Run {
	return MeasureIn(ctx, tb, name, nil, argv...)
}

// MeasureIn is Measure with the command's standard input read from stdin
// (a stream piped into the tool, as `... | mongorestore --archive` would).
func MeasureIn(ctx context.Context, tb testing.TB, name string, stdin io.Reader, argv ...string) Run {
	var outb, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, &outb, &errb
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
	r := Run{Name: name, Elapsed: elapsed, MaxRSS: <-peak, Stdout: outb.String(), Stderr: errb.String()}
	if err != nil {
		tb.Fatalf("%s: %v\n%s\n%s", name, err, r.Stdout, r.Stderr)
	}
	return r
}

// MeasurePeak is Measure with the peak RSS the kernel kept over the
// command's whole life: it runs the command under GNU time (`time -f %M`,
// the child's ru_maxrss), where Measure polls VmHWM every 20 ms and so
// misses the peak of a command that ends between two polls (a `rewind list`
// of 30 ms). GNU time forks a process of ~2 MiB, so the parent's peak that
// exec carries into ru_maxrss (see watchHWM) is its, not this process's.
// Without GNU time it fails the benchmark and says how to install it.
func MeasurePeak(ctx context.Context, tb testing.TB, name string, argv ...string) Run {
	gnuTime, err := exec.LookPath("time")
	if err != nil {
		tb.Fatalf("%s: GNU time is needed to measure peak memory (apt-get install time): %v", name, err)
	}
	f, err := os.CreateTemp("", "rewind-bench-maxrss-*")
	if err != nil {
		tb.Fatal(err)
	}
	f.Close()
	defer os.Remove(f.Name())
	r := Measure(ctx, tb, name, append([]string{gnuTime, "-f", "%M", "-o", f.Name()}, argv...)...)
	data, err := os.ReadFile(f.Name())
	if err != nil {
		tb.Fatal(err)
	}
	var kb int64 = -1
	if fields := strings.Fields(string(data)); len(fields) > 0 {
		kb, _ = strconv.ParseInt(fields[len(fields)-1], 10, 64)
	}
	if kb < 0 {
		tb.Fatalf("%s: GNU time wrote %q, want the peak RSS in KiB (is %s GNU time?)", name, data, gnuTime)
	}
	r.MaxRSS = kb << 10
	return r
}

// ProcCPU is another process's CPU time so far, user and system
// (/proc/PID/stat, in clock ticks of 1/100 s).
func ProcCPU(tb testing.TB, pid int) time.Duration {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		tb.Fatal(err)
	}
	f := strings.Fields(string(data[strings.LastIndexByte(string(data), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / 100
}

// ProcMemory is a memory figure of /proc/PID/status in bytes: "VmRSS"
// (resident now) or "VmHWM" (its peak); 0 when the process has none.
func ProcMemory(pid int, field string) int64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// watchHWM polls the process's VmHWM (its own peak RSS) until done and
// returns the largest value seen. The rusage of wait4 is no use here: on
// exec, Linux folds the parent's peak into the child's ru_maxrss (Go starts
// children with a vfork-style clone), so a test process holding the data
// set would report its own size for every tool.
func watchHWM(pid int, done <-chan struct{}) int64 {
	var peak int64
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for {
		peak = max(peak, ProcMemory(pid, "VmHWM"))
		select {
		case <-done:
			return peak
		case <-t.C:
		}
	}
}

// CPUTime is the CPU time (user and system) this process has used so far:
// a benchmark on a shared machine divides the work by it to get a rate
// that other load changes far less than wall-clock time.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// DiskBytes sums the sizes of the files under path.
func DiskBytes(tb testing.TB, path string) int64 {
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

// DocSize is the approximate size of one generated document.
const DocSize = 2048

// GenDoc builds document i: a few typed fields and a payload that is half
// random (incompressible) and half text, so compression has work to do.
func GenDoc(rng *rand.Rand, i int) bson.Raw { return GenDocPayload(rng, i, DocSize) }

// GenDocPayload is GenDoc with a payload of about payload bytes (half
// random bytes as hex, half text); the other fields add ~100 bytes.
func GenDocPayload(rng *rand.Rand, i, payload int) bson.Raw {
	random := make([]byte, payload/4)
	for j := range random {
		random[j] = byte(rng.IntN(256))
	}
	text := strings.Repeat(fmt.Sprintf("order %d for customer %d; ", i, rng.IntN(1000)), 20)
	d, err := bson.Marshal(bson.D{
		{Key: "_id", Value: int64(i)},
		{Key: "customer", Value: rng.IntN(100000)},
		{Key: "amount", Value: rng.Float64() * 1000},
		{Key: "tags", Value: bson.A{"a", "b", rng.IntN(10)}},
		{Key: "blob", Value: hex.EncodeToString(random)},
		{Key: "note", Value: text[:min(len(text), payload/2)]},
	})
	if err != nil {
		panic(err)
	}
	return d
}

// GenCollection returns the documents of collection c (GenDoc, seeded by
// c), totalling about bytes.
func GenCollection(c int, bytes int) []bson.Raw {
	rng := rand.New(rand.NewPCG(uint64(c), 42))
	var docs []bson.Raw
	for size, i := 0, 0; size < bytes; i++ {
		d := GenDoc(rng, c*10_000_000+i)
		docs = append(docs, d)
		size += len(d)
	}
	return docs
}

// Chunks splits docs, in order, into runs of at most maxBytes of BSON
// (a document larger than that is a run of its own): how a snapshot packs
// a collection into chunks, for benchmarks that write chunks themselves.
func Chunks(docs []bson.Raw, maxBytes int) [][]bson.Raw {
	var out [][]bson.Raw
	for start := 0; start < len(docs); {
		end, size := start+1, len(docs[start])
		for end < len(docs) && size+len(docs[end]) <= maxBytes {
			size += len(docs[end])
			end++
		}
		out = append(out, docs[start:end])
		start = end
	}
	return out
}

// WorkloadDocuments returns mb MiB (REWIND_BENCH_MB when it is set) of
// the workload's documents (workload.Documents, seed 16) made of the
// given value kinds: realistic data for the benchmarks of what rewind does
// with documents, the same in every benchmark that asks for the same size.
func WorkloadDocuments(kinds workload.Kinds, mb int) []bson.Raw {
	size := int64(EnvInt("REWIND_BENCH_MB", mb)) << 20
	docs := workload.Documents(workload.Config{Seed: 16, Kinds: kinds}, int(size/150)) // more than enough: they average 180-250 bytes
	var n int64
	for i, d := range docs {
		if n += int64(len(d)); n > size {
			return docs[:i]
		}
	}
	return docs
}

// Load inserts a data set into db: colls collections c0, c1... of
// totalMB/colls MiB each (GenCollection), in batches of 500.
func Load(tb testing.TB, client *mongo.Client, db string, colls, totalMB int) (docs int, size int64) {
	ctx := context.Background()
	for c := range colls {
		all := GenCollection(c, totalMB<<20/colls)
		coll := client.Database(db).Collection(fmt.Sprintf("c%d", c))
		for start := 0; start < len(all); start += 500 {
			batch := make([]any, 0, 500)
			for _, d := range all[start:min(start+500, len(all))] {
				batch = append(batch, d)
				size += int64(len(d))
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				tb.Fatalf("load %s: %v", coll.Name(), err)
			}
		}
		docs += len(all)
	}
	return docs, size
}

// OpenRepo opens the repository at url (closed when tb ends), failing tb
// if it cannot.
func OpenRepo(tb testing.TB, url string) *repo.Repository {
	tb.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: url})
	if err != nil {
		tb.Fatal(err)
	}
	return r
}
