package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// LargeObjectSize is the size of the large-object test's object: big
// enough that holding it in memory would show in the heap.
const LargeObjectSize = 64 << 20

// testCancelUpload cancels Puts in the middle of a multi-part upload: the
// Put fails, a new key does not appear and an existing one keeps its old
// content whole.
func testCancelUpload(t *testing.T, s storage.Store) {
	put(t, s, "victim", "old content")
	for _, key := range []string{"fresh", "victim"} {
		ctx, cancel := context.WithCancel(ctxT(t))
		var sent atomic.Int64
		// An endless reader that cancels the Put once 12 MiB (more than
		// two upload parts) have gone out.
		r := readerFunc(func(p []byte) (int, error) {
			if sent.Add(int64(len(p))) > 12<<20 {
				cancel()
			}
			clear(p)
			return len(p), nil
		})
		start := time.Now()
		err := s.Put(ctx, key, r)
		cancel()
		if err == nil {
			t.Fatalf("Put(%q) with a cancelled context succeeded", key)
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put(%q) cancelled = %v, want an error wrapping context.Canceled", key, err)
		}
		if d := time.Since(start); d > 30*time.Second {
			t.Errorf("cancelled Put(%q) took %s to return", key, d)
		}
	}
	if _, err := s.Stat(ctxT(t), "fresh"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(fresh) after a cancelled Put = %v, want ErrNotFound", err)
	}
	if got := get(t, s, "victim"); got != "old content" {
		t.Errorf("Get(victim) after a cancelled overwrite = %d bytes, want the old content", len(got))
	}
	sameKeys(t, "List after cancelled Puts", keys(list(t, s, "")), []string{"victim"})
}

// testReaderError: a source that fails mid-way fails the Put with that
// error and leaves nothing behind.
func testReaderError(t *testing.T, s storage.Store) {
	boom := errors.New("source failed")
	put(t, s, "victim", "old content")
	for _, key := range []string{"fresh", "victim"} {
		err := s.Put(ctxT(t), key, zeroes(6<<20, func() (int, error) { return 0, boom }))
		if !errors.Is(err, boom) {
			t.Errorf("Put(%q) from a failing reader = %v, want its error", key, err)
		}
	}
	if _, err := s.Stat(ctxT(t), "fresh"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Stat(fresh) after a failed Put = %v, want ErrNotFound", err)
	}
	if got := get(t, s, "victim"); got != "old content" {
		t.Errorf("Get(victim) after a failed overwrite = %d bytes, want the old content", len(got))
	}
}

// testLargeObject streams a 64 MiB object from a generator and back,
// comparing SHA-256 sums computed on the fly, and checks that neither
// direction grew the live heap by anything near the object's size.
func testLargeObject(t *testing.T, s storage.Store, o suiteOptions) {
	const size = LargeObjectSize
	// What a Put may keep: nothing, or for an in-memory store the object.
	var kept int64
	if o.inMemory {
		kept = size
	}
	gen := newGenerator(size)
	var putPeak, putRSS int64
	putTime := measure(&putPeak, &putRSS, func() {
		if err := s.Put(ctxT(t), "large/object", gen); err != nil {
			t.Fatalf("Put of %d MiB: %v", size>>20, err)
		}
	})
	if gen.n != size {
		t.Fatalf("Put read %d bytes of the generator, want %d", gen.n, size)
	}
	info, err := s.Stat(ctxT(t), "large/object")
	if err != nil || info.Size != size {
		t.Fatalf("Stat(large/object) = %+v, %v; want size %d", info, err, size)
	}
	var getPeak, getRSS int64
	var sum [32]byte
	var n int64
	getTime := measure(&getPeak, &getRSS, func() {
		r, err := s.Get(ctxT(t), "large/object")
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		defer r.Close()
		h := sha256.New()
		n, err = io.Copy(h, r)
		if err != nil {
			t.Fatalf("read large object: %v", err)
		}
		copy(sum[:], h.Sum(nil))
	})
	if n != size || !bytes.Equal(sum[:], gen.h.Sum(nil)) {
		t.Errorf("read back %d bytes with a different SHA-256 than the %d written", n, size)
	}
	t.Logf("%d MiB: put %s (live heap +%d MiB, RSS +%d MiB), get %s (+%d MiB, +%d MiB)",
		size>>20, putTime.Round(time.Millisecond), putPeak>>20, putRSS>>20,
		getTime.Round(time.Millisecond), getPeak>>20, getRSS>>20)
	// Half the object: a backend buffering it whole would exceed this.
	if limit := int64(size / 2); putPeak > kept+limit || getPeak > limit {
		t.Errorf("live heap grew by %d MiB during Put and %d MiB during Get of a %d MiB object: it must be streamed",
			putPeak>>20, getPeak>>20, size>>20)
	}
	// Some SDKs buffer outside the Go heap (Azure's uses mmap), which only
	// the resident set shows. It is coarser (freed heap stays resident for
	// a while), so the bound is the object's size.
	if putRSS > kept+size || getRSS > size {
		t.Errorf("resident memory grew by %d MiB during Put and %d MiB during Get of a %d MiB object: it must be streamed",
			putRSS>>20, getRSS>>20, size>>20)
	}
}

// residentBytes is the process's resident set size, or 0 where /proc is
// missing.
func residentBytes() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// measure runs fn while sampling the live heap (after a GC, so garbage
// doesn't count) and the resident set every 100 ms, and stores their
// largest growth over the baseline in peak and rss.
func measure(peak, rss *int64, fn func()) time.Duration {
	var ms runtime.MemStats
	runtime.GC()
	debug.FreeOSMemory()
	runtime.ReadMemStats(&ms)
	base := int64(ms.HeapAlloc)
	baseRSS := residentBytes()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			var ms runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, int64(ms.HeapAlloc)-base)
			*rss = max(*rss, residentBytes()-baseRSS)
		}
	})
	start := time.Now()
	fn()
	d := time.Since(start)
	close(stop)
	wg.Wait()
	return d
}

// generator yields size pseudo-random bytes and hashes them as they go.
type generator struct {
	size, n int64
	rng     *rand.ChaCha8
	h       interface {
		io.Writer
		Sum([]byte) []byte
	}
}

func newGenerator(size int64) *generator {
	var seed [32]byte
	copy(seed[:], strings.Repeat("rewind", 6))
	return &generator{size: size, rng: rand.NewChaCha8(seed), h: sha256.New()}
}

func (g *generator) Read(p []byte) (int, error) {
	if g.n >= g.size {
		return 0, io.EOF
	}
	p = p[:min(int64(len(p)), g.size-g.n)]
	g.rng.Read(p)
	g.h.Write(p)
	g.n += int64(len(p))
	return len(p), nil
}
