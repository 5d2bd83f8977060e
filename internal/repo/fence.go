package repo

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// EnvLockStaleAfter overrides the stale time of every lock a process
// takes, configured (lock.stale_after) or not (a Go duration, e.g. "3s");
// the refresh interval then becomes a sixth of it. It exists for tests that pause a process past the stale
// time (the fencing test); production leaves it unset.
const EnvLockStaleAfter = "REWIND_LOCK_STALE_AFTER"

// lockTimingFromEnv applies EnvLockStaleAfter to o.
func lockTimingFromEnv(o *LockOptions) error {
	v := os.Getenv(EnvLockStaleAfter)
	if v == "" {
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s=%q is not a positive duration such as 3s; unset it: %w", EnvLockStaleAfter, v, ErrInvalid)
	}
	o.StaleAfter, o.RefreshEvery = d, d/6
	return nil
}

// lease is when the lock may stop being honoured by others, less a
// margin for a Put that starts just before it: the last successful
// refresh plus StaleAfter, minus RefreshEvery (at most half of
// StaleAfter). Callers hold l.mu.
func (l *Lock) lease() time.Time {
	margin := min(l.opts.RefreshEvery, l.opts.StaleAfter/2)
	return l.lastOK.Add(l.opts.StaleAfter - margin)
}

// Check returns nil while the lock is valid: not known lost and its lease
// (the last successful refresh plus the stale time, less a margin) not
// passed. Past the lease it marks the lock lost, so its next Refresh fails
// too, and returns an error wrapping ErrLockLost. It reads the clock, not
// only a flag: a process paused (SIGSTOP, a frozen VM) past its lease
// finds out on the first write it attempts when it wakes, before its
// refresh goroutine has had a chance to run.
func (l *Lock) Check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost {
		return fmt.Errorf("lock %s: %w", lockKey(l.info.ID), ErrLockLost)
	}
	if lease := l.lease(); l.opts.Now().After(lease) {
		l.lost = true
		return fmt.Errorf("lock %s: its lease ended at %s without a refresh (another process may hold the repository now): %w",
			lockKey(l.info.ID), lease.UTC().Format(time.RFC3339Nano), ErrLockLost)
	}
	return nil
}

// fencedStore is the store a Repository writes through. While the
// process holds an exclusive lock on the repository (the fence), every
// Put and Delete outside locks/ first checks that lock (Lock.Check) and is
// refused once it is lost or its lease has passed: a writer that was
// paused or cut off past the stale time writes nothing, even before it
// notices. Lock objects are exempt: the lock protocol guards them itself.
// So are audit entries: each has a fresh random key, so writing one
// cannot spoil another holder's work, and a process taking the lock again
// after losing it must record the stale lock it removes on the way.
type fencedStore struct {
	storage.Store
	fence atomic.Pointer[Lock]
}

func (s *fencedStore) check(key string) error {
	l := s.fence.Load()
	if l == nil || strings.HasPrefix(key, prefixLocks) || strings.HasPrefix(key, prefixAudit) {
		return nil
	}
	if err := l.Check(); err != nil {
		return fmt.Errorf("refuse to write %s: %w", key, err)
	}
	return nil
}

// Put implements storage.Store.
func (s *fencedStore) Put(ctx context.Context, key string, r io.Reader) error {
	if err := s.check(key); err != nil {
		return err
	}
	return s.Store.Put(ctx, key, r)
}

// Delete implements storage.Store.
func (s *fencedStore) Delete(ctx context.Context, key string) error {
	if err := s.check(key); err != nil {
		return err
	}
	return s.Store.Delete(ctx, key)
}
