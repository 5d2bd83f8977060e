package benchtool

import (
	"context"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// StartAgent runs `rewind agent` with args as a child process (its own
// process group, killed if the benchmark dies, stderr passed through) and
// kills it in tb.Cleanup. The caller reads its CPU and memory from /proc
// by its Process.Pid (ProcCPU, ProcMemory).
func StartAgent(tb testing.TB, args ...string) *exec.Cmd {
	agent := exec.Command(testbin.Rewind(tb), append([]string{"agent"}, args...)...)
	agent.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	agent.Stderr = os.Stderr
	if err := agent.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = agent.Process.Kill(); _ = agent.Wait() })
	return agent
}

// NewestEntry is the timestamp of the newest entry in the oplog of the
// deployment at uri.
func NewestEntry(tb testing.TB, uri string) optime.Timestamp {
	ctx := context.Background()
	src, err := source.Connect(ctx, uri)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close(ctx)
	ts, err := src.NewestEntry(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}

// SegmentWatcher lists one shard's segments in a repository every few
// milliseconds (Run) and notes when each first appears: that is when its
// entries became durable, the end of a write's RPO.
type SegmentWatcher struct {
	R     *repo.Repository
	Shard string

	mu   sync.Mutex
	seen map[string]time.Time
	segs []repo.SegmentInfo
	last optime.Timestamp
}

// Run watches until ctx ends.
func (w *SegmentWatcher) Run(ctx context.Context) {
	for ctx.Err() == nil {
		segs, err := w.R.ListSegments(context.Background(), w.Shard)
		now := time.Now()
		if err == nil {
			w.mu.Lock()
			if w.seen == nil {
				w.seen = map[string]time.Time{}
			}
			for _, s := range segs {
				if _, ok := w.seen[s.Key]; !ok {
					w.seen[s.Key] = now
					w.segs = append(w.segs, s)
					if s.Last.After(w.last) {
						w.last = s.Last
					}
				}
			}
			w.mu.Unlock()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Durable is the newest entry of the segments seen so far.
func (w *SegmentWatcher) Durable() optime.Timestamp {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

// WaitDurable returns once the segments seen reach ts, failing tb after
// within.
func (w *SegmentWatcher) WaitDurable(tb testing.TB, ts optime.Timestamp, within time.Duration) {
	deadline := time.Now().Add(within)
	for w.Durable().Before(ts) {
		if time.Now().After(deadline) {
			tb.Fatalf("shard %s: entries through %s not durable %s after the last write", w.Shard, ts, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Latencies maps every insert into ns whose _id i has a non-zero acks[i]
// to the time its segment appeared, less acks[i]: the write's RPO. It
// fails tb unless every such write is found. Call it after Run ended.
func (w *SegmentWatcher) Latencies(tb testing.TB, ns string, acks []time.Time) []time.Duration {
	var out []time.Duration
	for _, s := range w.segs {
		entries, err := w.R.ReadSegment(context.Background(), s)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if e.Lookup("ns").StringValue() != ns || e.Lookup("op").StringValue() != "i" {
				continue
			}
			id, ok := e.Lookup("o", "_id").AsInt64OK()
			if !ok || id < 0 || int(id) >= len(acks) || acks[id].IsZero() {
				continue
			}
			out = append(out, w.seen[s.Key].Sub(acks[id]))
		}
	}
	want := 0
	for _, a := range acks {
		if !a.IsZero() {
			want++
		}
	}
	if len(out) != want {
		tb.Fatalf("shard %s: found %d of %d writes to %s in the repository", w.Shard, len(out), want, ns)
	}
	return out
}
