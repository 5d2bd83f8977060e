package retention_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
)

// breakingStore breaks every lock after the first object a prune deletes,
// as `rewind unlock --all` from another shell would (or a storage outage
// longer than the lock's staleness), then holds that Delete until the
// prune's context ends: the moment the holder knows. It deletes whatever
// it is asked afterwards even on a cancelled context, as a backend with a
// request already in flight might, and records those keys: the prune
// itself must not ask. It also records lock objects written after the
// break: a holder that lost its lock must not write it back, or another
// process that took the repository over would find it locked again.
type breakingStore struct {
	storage.Store
	breakLocks func() error

	mu     sync.Mutex
	broken bool
	after  []string // objects deleted after the lock was broken
	relock []string // lock objects written after it was broken
	waited error    // why the wait for the holder ended, if not its context
}

func (s *breakingStore) Put(ctx context.Context, key string, r io.Reader) error {
	s.mu.Lock()
	if s.broken && strings.HasPrefix(key, "locks/") {
		s.relock = append(s.relock, key)
	}
	s.mu.Unlock()
	return s.Store.Put(ctx, key, r)
}

func (s *breakingStore) Delete(ctx context.Context, key string) error {
	if strings.HasPrefix(key, "locks/") {
		return s.Store.Delete(ctx, key)
	}
	s.mu.Lock()
	broken := s.broken
	s.broken = true
	if broken {
		s.after = append(s.after, key)
	}
	s.mu.Unlock()
	err := s.Store.Delete(context.WithoutCancel(ctx), key)
	if broken {
		return err
	}
	if berr := s.breakLocks(); berr != nil {
		s.waited = berr
		return err
	}
	select {
	case <-ctx.Done():
	case <-time.After(30 * time.Second):
		s.waited = errors.New("the prune's context was not cancelled within 30 s of the lock being broken")
	}
	return err
}

// A prune whose exclusive lock is broken while it deletes stops with an
// error naming the lost lock, and deletes nothing more.
func TestPruneStopsWhenItsLockIsLost(t *testing.T) {
	start := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	s := newSim(t, start, 2)
	for h := 0; h < 24*6; h++ {
		s.hour()
		if h%6 == 5 {
			s.snapshot()
		}
	}
	p := retention.Policy{RestoreWindow: 24 * time.Hour}
	plan, err := retention.Plan(s.ctx, s.r, p, s.now)
	must(t, err)
	if n := len(plan.Decisions[0].DropSnapshots()); n < 10 {
		t.Fatalf("the plan drops %d snapshots; the test needs many deletions", n)
	}

	bs := &breakingStore{Store: s.store, breakLocks: func() error {
		_, err := s.r.BreakLocks(s.ctx, false, repo.DefaultStaleAfter, time.Now()) // unlock --all
		return err
	}}
	r, err := repo.Open(s.ctx, bs, repo.OpenOptions{})
	must(t, err)
	lock, err := r.Lock(s.ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "prune", RefreshEvery: 20 * time.Millisecond})
	must(t, err)
	// As `rewind prune` does: the work runs under the context Hold returns.
	ctx, release := lock.Hold(s.ctx)
	_, err = retention.Prune(ctx, r, lock, p, s.now, quiet)
	err = repo.LostError(ctx, err)
	release()

	if bs.waited != nil {
		t.Fatal(bs.waited)
	}
	if !errors.Is(err, repo.ErrLockLost) || !strings.Contains(err.Error(), "lock was lost") {
		t.Fatalf("prune after its lock was broken returned %v; want an error naming the lost lock", err)
	}
	if len(bs.after) > 0 {
		t.Fatalf("prune deleted %d objects after its lock was lost, the first %s", len(bs.after), bs.after[0])
	}
	if len(bs.relock) > 0 {
		t.Fatalf("prune wrote its lock object back after losing it: %v", bs.relock)
	}
	var locks []string
	must(t, s.store.List(s.ctx, "locks/", func(i storage.Info) error { locks = append(locks, i.Key); return nil }))
	if len(locks) > 0 {
		t.Fatalf("prune left lock objects after losing its lock: %v", locks)
	}
}
