package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a settable test clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

func lockOpts(c *clock, kind LockKind, purpose, host string) LockOptions {
	// Our own pid: contenders in this process are alive (see deadHolder).
	return LockOptions{Kind: kind, Purpose: purpose, Host: host, PID: os.Getpid(), Now: c.Now,
		StaleAfter: time.Minute, RefreshEvery: 10 * time.Second, SettleDelay: 5 * time.Millisecond}
}

func TestLockTwoWriters(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	a, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "db1"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.Lock(ctx, lockOpts(c, LockExclusive, "prune", "laptop"))
	var le *LockedError
	if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.Holder.Host != "db1" || le.Holder.Purpose != "agent" {
		t.Fatalf("second writer: %v", err)
	}
	for _, s := range []string{"db1", fmt.Sprintf("pid %d", os.Getpid()), "agent", "exclusive", "2026-11-25T10:00:00Z", "rewind unlock --repo mem://test"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("message lacks %q: %v", s, err)
		}
	}
	if locks, _ := r.ListLocks(ctx); len(locks) != 1 {
		t.Fatalf("refused writer left its lock: %d locks", len(locks))
	}
	if err := a.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	b, err := r.Lock(ctx, lockOpts(c, LockExclusive, "prune", "laptop"))
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	b.Unlock(ctx)
}

func TestLockWriterAndReaders(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	w, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "db1"))
	if err != nil {
		t.Fatal(err)
	}
	// Readers coexist with a writer that only adds objects, and with each
	// other.
	r1, err := r.Lock(ctx, lockOpts(c, LockShared, "restore", "h1"))
	if err != nil {
		t.Fatal(err)
	}
	r2, err := r.Lock(ctx, lockOpts(c, LockShared, "verify", "h2"))
	if err != nil {
		t.Fatal(err)
	}
	// Deleting must wait for the readers.
	if err := w.BeginDelete(ctx); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "restore") && !strings.Contains(err.Error(), "verify") {
		t.Fatalf("delete with readers: %v", err)
	}
	if w.Info().Deleting {
		t.Fatal("lock left in deleting mode")
	}
	r1.Unlock(ctx)
	r2.Unlock(ctx)
	if err := w.BeginDelete(ctx); err != nil {
		t.Fatal(err)
	}
	// While deleting, a reader is refused.
	if _, err := r.Lock(ctx, lockOpts(c, LockShared, "restore", "h1")); !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "deleting") {
		t.Fatalf("reader while deleting: %v", err)
	}
	if err := w.EndDelete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, lockOpts(c, LockShared, "restore", "h1")); err != nil {
		t.Fatalf("reader after delete: %v", err)
	}
}

func TestLockStaleTakeoverAndLost(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	old, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "dead"))
	if err != nil {
		t.Fatal(err)
	}
	c.Add(30 * time.Second)
	if err := old.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(50 * time.Second) // 50 s since the refresh: still live
	if _, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "new")); !errors.Is(err, ErrLocked) {
		t.Fatalf("live lock: %v", err)
	}
	c.Add(11 * time.Second) // 61 s: stale
	nl, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "new"))
	if err != nil {
		t.Fatalf("stale takeover: %v", err)
	}
	if err := old.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("old holder refresh: %v", err)
	}
	locks, _ := r.ListLocks(ctx)
	if len(locks) != 1 || locks[0].ID != nl.Info().ID {
		t.Fatalf("locks after takeover: %+v", locks)
	}
}

func TestBreakLocks(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	a, _ := r.Lock(ctx, lockOpts(c, LockShared, "restore", "h1"))
	b, _ := r.Lock(ctx, lockOpts(c, LockShared, "restore", "h2"))
	c.Add(50 * time.Second)
	if err := b.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(20 * time.Second) // a is stale, b is not
	n, err := r.BreakLocks(ctx, true, time.Minute, c.Now())
	if err != nil || n != 1 {
		t.Fatalf("break stale: %d, %v", n, err)
	}
	if err := a.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("broken holder: %v", err)
	}
	if n, err := r.BreakLocks(ctx, false, 0, c.Now()); err != nil || n != 1 {
		t.Fatalf("break all: %d, %v", n, err)
	}
	if err := b.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("broken holder: %v", err)
	}
}

// TestLockRace starts many exclusive contenders at once, repeatedly: at
// most one may ever win.
func TestLockRace(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	c := &clock{now: time.Now()}
	wins := 0
	for round := 0; round < 20; round++ {
		var won atomic.Int32
		var held []*Lock
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				l, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "h"))
				if err == nil {
					won.Add(1)
					mu.Lock()
					held = append(held, l)
					mu.Unlock()
				} else if !errors.Is(err, ErrLocked) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if won.Load() > 1 {
			t.Fatalf("round %d: %d writers hold the exclusive lock", round, won.Load())
		}
		wins += int(won.Load())
		for _, l := range held {
			l.Unlock(ctx)
		}
	}
	t.Logf("%d of 20 rounds had a winner", wins)
}

func TestLockRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r, _ := newRepo(t, nil, "")
	o := LockOptions{Kind: LockExclusive, Purpose: "agent", RefreshEvery: 5 * time.Millisecond, StaleAfter: time.Second}
	l, err := r.Lock(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	first := l.Info().Refreshed
	for deadline := time.Now().Add(2 * time.Second); !l.Info().Refreshed.After(first); {
		if time.Now().After(deadline) {
			t.Fatal("Run did not refresh within 2 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, err := r.BreakLocks(ctx, false, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrLockLost) {
			t.Fatalf("Run after break: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("Run did not notice the broken lock")
	}
	cancel()
}

// TestLockDeadHolderSameHost: a lock left by a process of this host that no
// longer exists (kill -9) is taken over at once, without waiting to go stale;
// the same pid on another host is not.
func TestLockDeadHolderSameHost(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	dead := cmd.Process.Pid
	c := &clock{now: time.Now()}
	o := lockOpts(c, LockExclusive, "agent", "otherhost")
	o.PID = dead
	if _, err := r.Lock(ctx, o); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "thishost")); !errors.Is(err, ErrLocked) {
		t.Fatalf("lock of a dead pid on another host: %v", err)
	}
	if _, err := r.Lock(ctx, lockOpts(c, LockExclusive, "agent", "otherhost")); err != nil {
		t.Fatalf("lock of a dead pid on this host: %v", err)
	}
}

// TestLockHoldCancelsWhenLost: the context Hold returns ends, with the lost
// lock as its cause, as soon as the lock is broken, so a prune or restore
// working under it stops instead of writing on; release still returns.
func TestLockHoldCancelsWhenLost(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	o := LockOptions{Kind: LockExclusive, Purpose: "prune", RefreshEvery: 5 * time.Millisecond, StaleAfter: time.Second}
	l, err := r.Lock(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	held, release := l.Hold(ctx)
	defer release()
	if held.Err() != nil {
		t.Fatalf("held context ended at once: %v", held.Err())
	}
	if _, err := r.BreakLocks(ctx, false, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Done():
	case <-time.After(2 * time.Second):
		t.Fatal("the held context was not cancelled after the lock was broken")
	}
	if err := LostError(held, held.Err()); !errors.Is(err, ErrLockLost) {
		t.Fatalf("LostError = %v; want it to wrap ErrLockLost", err)
	}
	if err := LostError(ctx, errors.New("other")); err.Error() != "other" {
		t.Fatalf("LostError changed an unrelated error: %v", err)
	}
}

// Once a holder has found its lock lost, nothing it does writes the lock
// object back: a process that took the repository over must not find it
// locked again by the one that lost it.
func TestLostLockIsNeverWrittenBack(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	l, err := r.Lock(ctx, LockOptions{Kind: LockExclusive, Purpose: "prune", RefreshEvery: time.Hour, StaleAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.BreakLocks(ctx, false, 0, time.Now()); err != nil { // unlock --all
		t.Fatal(err)
	}
	if err := l.Refresh(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("Refresh after the break: %v, want ErrLockLost", err)
	}
	if err := l.BeginDelete(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("BeginDelete on a lost lock: %v, want ErrLockLost", err)
	}
	if err := l.EndDelete(ctx); !errors.Is(err, ErrLockLost) {
		t.Fatalf("EndDelete on a lost lock: %v, want ErrLockLost", err)
	}
	if locks, err := r.ListLocks(ctx); err != nil || len(locks) != 0 {
		t.Fatalf("after a lost lock's BeginDelete/EndDelete the store holds locks %+v (%v)", locks, err)
	}
}
