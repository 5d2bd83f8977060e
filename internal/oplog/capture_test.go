package oplog

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// flakySink refuses every batch until opened, then records them.
type flakySink struct {
	open    atomic.Bool
	mu      sync.Mutex
	batches []Batch
}

func (s *flakySink) WriteSegment(ctx context.Context, b Batch) error {
	if !s.open.Load() {
		return errors.New("storage unreachable")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, b)
	return nil
}

func entry(t, i uint32, pad int) bson.Raw {
	raw, _ := bson.Marshal(bson.D{{Key: "ts", Value: bson.Timestamp{T: t, I: i}}, {Key: "op", Value: "n"},
		{Key: "o", Value: bson.D{{Key: "pad", Value: string(make([]byte, pad))}}}})
	return raw
}

// feed is a Capture.Read sending n entries of 500 bytes, ten per second
// of timestamps from (100, 1), counting them in fed, then waits for ctx.
func feed(n int, fed *atomic.Int64) func(ctx context.Context, out chan<- bson.Raw) error {
	return func(ctx context.Context, out chan<- bson.Raw) error {
		for i := range n {
			select {
			case out <- entry(100+uint32(i/10), uint32(i%10+1), 500):
				fed.Add(1)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		<-ctx.Done()
		return ctx.Err()
	}
}

// With storage down, the spool fills to its bound, then capture stops
// taking entries (the source is not read further) and says so; when storage
// returns, every entry arrives, in order, chained, none dropped.
func TestFullSpoolPausesCaptureAndDropsNothing(t *testing.T) {
	const n = 400
	var fed atomic.Int64
	sink := &flakySink{}
	spool, err := OpenSpool(filepath.Join(t.TempDir(), "spool"), 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	c := &Capture{Sink: sink, Spool: spool, FlushInterval: 10 * time.Millisecond, MaxBatchBytes: 8 << 10,
		DrainTimeout: 30 * time.Second, Read: feed(n, &fed)}
	c.Stats = &Stats{}
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()

	deadline := time.Now().Add(10 * time.Second)
	for !c.Stats.SpoolFull.Load() {
		if time.Now().After(deadline) {
			t.Fatalf("spool never reported full (holds %d bytes)", spool.Bytes())
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	stalled := fed.Load()
	if stalled >= n {
		t.Fatalf("all %d entries were taken although the spool is full", n)
	}
	if spool.Bytes() > 64<<10+8<<10 {
		t.Fatalf("spool holds %d bytes, past its bound", spool.Bytes())
	}
	if c.Stats.StorageErrors.Load() == 0 {
		t.Fatal("storage errors were not counted")
	}
	sink.open.Store(true)
	last := optime.Timestamp{T: 100 + (n-1)/10, I: (n-1)%10 + 1}
	for c.Stats.LastDurable() != last {
		if time.Now().After(deadline.Add(20 * time.Second)) {
			t.Fatalf("durable %s, want %s", c.Stats.LastDurable(), last)
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := 0
	prev := optime.Zero
	for _, b := range sink.batches {
		if b.Prev != prev {
			t.Fatalf("batch %s..%s names %s as previous, want %s", b.First, b.Last, b.Prev, prev)
		}
		prev = b.Last
		got += len(b.Entries)
	}
	if got != n {
		t.Fatalf("stored %d entries, fed %d", got, n)
	}
	t.Logf("source reads paused at %d of %d entries while the spool was full", stalled, n)
}
