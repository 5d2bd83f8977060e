package repo

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// A writer whose lock was not refreshed (its process was paused) writes
// nothing once the lease has passed, before any Refresh has run: every Put
// and Delete outside locks/ is refused with ErrLockLost, and the lock is
// known lost from then on.
func TestFenceRefusesWritesPastLease(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	o := lockOpts(c, LockExclusive, "agent", "db1") // stale 1 min, refresh 10 s
	l, err := r.Lock(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	hb := Heartbeat{Shard: "rs0", Host: "db1", Updated: c.Now()}
	if err := r.WriteHeartbeat(ctx, hb); err != nil {
		t.Fatalf("write within the lease: %v", err)
	}
	c.Add(49 * time.Second) // lease: 60 s stale - 10 s margin
	if err := r.WriteHeartbeat(ctx, hb); err != nil {
		t.Fatalf("write 49 s after the last refresh: %v", err)
	}
	c.Add(2 * time.Second)
	before := st.raw(heartbeatKey("rs0"))
	hb.Host = "woken"
	if err := r.WriteHeartbeat(ctx, hb); !errors.Is(err, ErrLockLost) {
		t.Fatalf("write past the lease = %v, want ErrLockLost", err)
	}
	if got := st.raw(heartbeatKey("rs0")); string(got) != string(before) {
		t.Fatal("the refused write changed the heartbeat object")
	}
	if err := r.Store().Delete(ctx, heartbeatKey("rs0")); !errors.Is(err, ErrLockLost) {
		t.Fatalf("delete past the lease = %v, want ErrLockLost", err)
	}
	if err := l.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("refresh after the fence refused = %v, want ErrLockLost", err)
	}
	// A lock taken again fences with its own lease; Unlock lifts the fence.
	c.Add(2 * time.Minute)
	l2, err := r.Lock(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHeartbeat(ctx, hb); err != nil {
		t.Fatalf("write under the new lock: %v", err)
	}
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	if err := r.WriteHeartbeat(ctx, hb); err != nil {
		t.Fatalf("write with no lock held: %v", err)
	}
}

// countingStore counts Puts per key prefix.
type countingStore struct {
	storage.Store
	mu   sync.Mutex
	puts map[string]int
}

func (s *countingStore) Put(ctx context.Context, key string, r io.Reader) error {
	s.mu.Lock()
	s.puts[strings.SplitN(key, "/", 2)[0]]++
	s.mu.Unlock()
	return s.Store.Put(ctx, key, r)
}

// A contender refused because a live writer holds the lock writes no lock
// object: it looks before it writes.
func TestRefusedLockWritesNothing(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	if _, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "db1")); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{Store: st, puts: map[string]int{}}
	r2, err := Open(ctx, cs, OpenOptions{Location: "mem://test"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r2.Lock(ctx, lockOpts(c, LockExclusive, "agent", "db2")); !errors.Is(err, ErrLocked) {
		t.Fatalf("second writer = %v, want ErrLocked", err)
	}
	if n := cs.puts["locks"]; n != 0 {
		t.Fatalf("the refused contender wrote %d lock objects, want 0", n)
	}
}
