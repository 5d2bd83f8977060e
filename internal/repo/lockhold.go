package repo

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// write stores the lock object; callers hold l.mu (or own l alone). Once
// the lock is known lost it refuses: writing the object back would make a
// process that took the repository over find it locked again.
func (l *Lock) write(ctx context.Context) error {
	if l.lost {
		return fmt.Errorf("write lock %s: %w", lockKey(l.info.ID), ErrLockLost)
	}
	return l.r.putBSON(ctx, lockKey(l.info.ID), KindLock, l.info)
}

// Refresh rewrites the lock object with a new refresh time. It fails with
// ErrLockLost if the object was removed (broken, or judged stale) or if the
// last refresh is so old that others may already treat the lock as stale:
// the holder must stop what it is doing.
func (l *Lock) Refresh(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.opts.Now().UTC()
	key := lockKey(l.info.ID)
	if now.Sub(l.lastOK) > l.opts.StaleAfter {
		l.lost = true
		return fmt.Errorf("refresh lock %s: not refreshed since %s: %w", key, l.lastOK.Format(time.RFC3339), ErrLockLost)
	}
	if _, err := l.r.store.Stat(ctx, key); errors.Is(err, storage.ErrNotFound) {
		l.lost = true
		return fmt.Errorf("refresh lock %s: the lock object was removed: %w", key, ErrLockLost)
	} else if err != nil {
		return fmt.Errorf("refresh lock %s: %w", key, err)
	}
	l.info.Refreshed = now
	if err := l.write(ctx); err != nil {
		return fmt.Errorf("refresh lock: %w", err)
	}
	l.lastOK = now
	return nil
}

// Run refreshes the lock every RefreshEvery until ctx is done (then it
// returns nil) or a refresh fails (then it returns the error, and the holder
// must stop). Transient store errors are retried until the lock would go
// stale.
func (l *Lock) Run(ctx context.Context) error {
	t := time.NewTicker(l.opts.RefreshEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		// Bounded: Refresh holds the lock's mutex, which every fenced
		// write waits for, so a stalled storage connection must not keep
		// it past one refresh period (the next tick retries).
		rctx, cancel := context.WithTimeout(ctx, l.opts.RefreshEvery)
		err := l.Refresh(rctx)
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if errors.Is(err, ErrLockLost) {
			return err
		}
	}
}

// Hold keeps the lock refreshed in the background until release is called;
// release stops the refreshing and removes the lock (bounded to 10 s). It
// suits holders that finish soon (a restore, verify, a prune by hand); the
// agent runs Run itself and acts on its error.
//
// The returned context is ctx, cancelled with ErrLockLost as its cause
// (context.Cause) as soon as the lock is lost: broken by `rewind unlock
// --all`, or not refreshed for StaleAfter because storage was unreachable.
// The holder does all its work under it, so nothing is written or deleted
// once another process may hold the lock.
func (l *Lock) Hold(ctx context.Context) (held context.Context, release func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := l.Run(held); err != nil {
			cancel(err)
		}
	}()
	return held, func() {
		cancel(context.Canceled)
		<-done
		uctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer stop()
		_ = l.Unlock(uctx)
	}
}

// LostError returns the reason ctx (from Hold) ended when that reason is a
// lost lock, else err unchanged: a holder cut short reports the lost lock
// rather than a bare "context canceled".
func LostError(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if cause := context.Cause(ctx); errors.Is(cause, ErrLockLost) {
		return fmt.Errorf("stopped because the repository lock was lost: %w", cause)
	}
	return err
}

// BeginDelete switches an exclusive lock to deleting mode, after which the
// holder may remove objects. It fails with a *LockedError if a reader holds
// a shared lock; the lock then stays exclusive (not deleting).
func (l *Lock) BeginDelete(ctx context.Context) error {
	if l.info.Kind != LockExclusive {
		return fmt.Errorf("begin delete: a %s lock cannot delete: %w", l.info.Kind, ErrInvalid)
	}
	l.mu.Lock()
	l.info.Deleting = true
	err := l.write(ctx)
	l.mu.Unlock()
	if err != nil {
		return fmt.Errorf("begin delete: %w", err)
	}
	// Readers write their lock then list, as we do: at least one of us
	// sees the other, so a reader never reads while we delete.
	others, err := l.r.conflicting(ctx, l.Info(), l.opts)
	if err == nil && len(others) == 0 {
		return nil
	}
	if endErr := l.EndDelete(ctx); endErr != nil {
		return endErr
	}
	if err != nil {
		return fmt.Errorf("begin delete: %w", err)
	}
	return &LockedError{Location: l.r.location, Holder: others[0]}
}

// EndDelete leaves deleting mode: readers may lock again.
func (l *Lock) EndDelete(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.info.Deleting = false
	if err := l.write(ctx); err != nil {
		return fmt.Errorf("end delete: %w", err)
	}
	return nil
}

// Unlock removes the lock object. The repository's writes are no longer
// fenced by it.
func (l *Lock) Unlock(ctx context.Context) error {
	l.r.store.fence.CompareAndSwap(l, nil)
	if err := l.r.deleteIfExists(ctx, lockKey(l.info.ID)); err != nil {
		return fmt.Errorf("unlock: %w", err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func randomUint(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return binary.LittleEndian.Uint64(b[:]) % n
}
