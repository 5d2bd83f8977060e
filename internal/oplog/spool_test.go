package oplog

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testdisk"
)

// batchAt is a batch of one entry at (t, 1), after prev.
func batchAt(t uint32, prev optime.Timestamp) Batch {
	b := Batch{Timeline: "tl-1", Prev: prev}
	b.Append(entry(t, 1, 100), optime.Timestamp{T: t, I: 1})
	return b
}

// spoolFiles lists every file in dir, temp files included.
func spoolFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// A spool write on a full filesystem fails without leaving a partial file,
// with an error naming the directory and the remedy; it works once space
// returns.
func TestSpoolOnFullDisk(t *testing.T) {
	dir := filepath.Join(testdisk.Tmpfs(t, "spool", 1<<20), "s")
	s, err := OpenSpool(dir, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	free := testdisk.Fill(t, filepath.Dir(dir))
	err = s.Put(batchAt(100, optime.Zero))
	if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "is full: free space on it") {
		t.Fatalf("put on a full spool: %v; want an error naming %s and saying it is full", err, dir)
	}
	if files := spoolFiles(t, dir); len(files) != 0 || s.Bytes() != 0 {
		t.Fatalf("a failed put left %v (%d bytes counted)", files, s.Bytes())
	}
	free()
	if err := s.Put(batchAt(100, optime.Zero)); err != nil {
		t.Fatalf("put once space returned: %v", err)
	}
}

// On a read-only spool, an uploaded batch whose file cannot be removed is
// skipped, so the next one is uploaded; its removal is retried once the
// spool is writable again.
func TestReadOnlySpoolSkipsUploadedBatches(t *testing.T) {
	mnt := testdisk.Tmpfs(t, "spool", 1<<20)
	s, err := OpenSpool(filepath.Join(mnt, "s"), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	prev := optime.Zero
	for i := range 3 {
		b := batchAt(100+uint32(i), prev)
		if err := s.Put(b); err != nil {
			t.Fatal(err)
		}
		prev = b.Last
	}
	writable := testdisk.ReadOnly(t, mnt)
	b, name, ok, err := s.Oldest()
	if !ok || err != nil || b.First.T != 100 {
		t.Fatalf("oldest = %v %v %v, want the batch at 100", b.First, ok, err)
	}
	if err := s.Remove(name); err == nil || !strings.Contains(err.Error(), "remount it read-write") {
		t.Fatalf("remove on a read-only spool: %v, want an error saying to remount it", err)
	}
	if b, _, ok, err := s.Oldest(); !ok || err != nil || b.First.T != 101 {
		t.Fatalf("oldest after an unremovable upload = %v %v %v, want the batch at 101", b.First, ok, err)
	}
	writable()
	before := s.Bytes()
	if b, _, ok, err := s.Oldest(); !ok || err != nil || b.First.T != 101 {
		t.Fatalf("oldest once writable = %v %v %v, want the batch at 101", b.First, ok, err)
	}
	if n := len(spoolFiles(t, s.Dir())); n != 2 || s.Bytes() >= before {
		t.Fatalf("once writable the spool holds %d files and %d bytes (%d before): the uploaded batch's removal was not retried", n, s.Bytes(), before)
	}
}

// With PauseOnSpoolError, a spool that cannot be written pauses capture:
// the source is not read further, the error is in Stats.SpoolError, and
// once space returns every entry arrives, in order. Without it the error
// ends Run, naming the spool.
func TestUnwritableSpoolPausesCapture(t *testing.T) {
	const n = 400
	mnt := testdisk.Tmpfs(t, "spool", 1<<20)
	spool, err := OpenSpool(filepath.Join(mnt, "s"), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	var fed atomic.Int64
	read := feed(n, &fed)
	sink := &flakySink{}
	sink.open.Store(true)
	free := testdisk.Fill(t, mnt)
	ctx, stop := context.WithCancel(context.Background())
	c := &Capture{Sink: sink, Spool: spool, FlushInterval: 10 * time.Millisecond, MaxBatchBytes: 8 << 10,
		DrainTimeout: 30 * time.Second, Read: read, Stats: &Stats{}, PauseOnSpoolError: true}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitUntil(t, 10*time.Second, "a spool error in the stats", func() bool {
		select {
		case err := <-done:
			t.Fatalf("capture ended on a full spool: %v", err)
		default:
		}
		return c.Stats.SpoolError() != ""
	})
	time.Sleep(300 * time.Millisecond) // (unpaused, every entry is read in far less)
	paused := fed.Load()
	time.Sleep(200 * time.Millisecond)
	if now := fed.Load(); now != paused || now >= n {
		t.Fatalf("the source was read on while the spool could not be written: %d entries, then %d of %d", paused, now, n)
	}
	select {
	case err := <-done:
		t.Fatalf("capture ended on a full spool: %v", err)
	default:
	}
	free()
	last := optime.Timestamp{T: 100 + (n-1)/10, I: (n-1)%10 + 1}
	waitUntil(t, 20*time.Second, "every entry durable", func() bool { return c.Stats.LastDurable() == last })
	if e := c.Stats.SpoolError(); e != "" {
		t.Fatalf("spool error still set after a write succeeded: %s", e)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got, prev := 0, optime.Zero
	for _, b := range sink.batches {
		if b.Prev != prev {
			t.Fatalf("batch %s..%s names %s as previous, want %s", b.First, b.Last, b.Prev, prev)
		}
		prev, got = b.Last, got+len(b.Entries)
	}
	if got != n {
		t.Fatalf("stored %d entries, fed %d", got, n)
	}

	// A one-shot capture (a snapshot's range) stops instead.
	free = testdisk.Fill(t, mnt)
	defer free()
	fed.Store(0)
	c = &Capture{Sink: sink, Spool: spool, FlushInterval: 10 * time.Millisecond, MaxBatchBytes: 8 << 10, Read: read}
	err = c.Run(context.Background())
	if err == nil || !strings.Contains(err.Error(), spool.Dir()) {
		t.Fatalf("one-shot capture on a full spool returned %v, want an error naming %s", err, spool.Dir())
	}
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %s", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
