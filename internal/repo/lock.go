package repo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/storage"
)

// LockKind says what a lock holder may do.
type LockKind string

// Lock kinds. Exclusive locks exclude each other (one writer: the agent or a
// prune run by hand). Shared locks (restore, verify) coexist with each other
// and with an exclusive holder that is only adding objects; an exclusive
// holder must switch to deleting mode (BeginDelete), which shared locks
// exclude, before it removes anything.
const (
	LockExclusive LockKind = "exclusive"
	LockShared    LockKind = "shared"
)

// Default lock timings.
const (
	DefaultRefreshEvery = 10 * time.Second
	DefaultStaleAfter   = 60 * time.Second
	DefaultSettleDelay  = time.Second
)

// LockInfo is the content of a lock object.
type LockInfo struct {
	ID        string    `bson:"id"`
	Kind      LockKind  `bson:"kind"`
	Deleting  bool      `bson:"deleting,omitempty"` // exclusive holder is removing objects
	Purpose   string    `bson:"purpose"`            // "agent", "prune", "restore", ...
	Host      string    `bson:"host"`
	PID       int       `bson:"pid"`
	Started   time.Time `bson:"started"`
	Refreshed time.Time `bson:"refreshed"`
	// StaleAfterMS is the holder's own stale time in milliseconds (0 in
	// locks written before it was recorded): a contender waits for the
	// longer of it and its own, so a holder configured to refresh slowly
	// is never taken for dead.
	StaleAfterMS int64 `bson:"stale_after_ms,omitempty"`
}

// Stale reports whether l, not refreshed since then, may be ignored by a
// contender whose own stale time is staleAfter.
func (l LockInfo) Stale(now time.Time, staleAfter time.Duration) bool {
	return now.Sub(l.Refreshed) > max(staleAfter, time.Duration(l.StaleAfterMS)*time.Millisecond)
}

// conflicts reports whether holding a and b at once is forbidden.
func conflicts(a, b LockInfo) bool {
	switch {
	case a.Kind == LockExclusive && b.Kind == LockExclusive:
		return true
	case a.Kind == LockShared && b.Kind == LockShared:
		return false
	case a.Kind == LockExclusive:
		return a.Deleting
	default:
		return b.Deleting
	}
}

// LockedError is returned when a conflicting lock is held. errors.Is(err,
// ErrLocked) is true.
type LockedError struct {
	Location string
	Holder   LockInfo
}

func (e *LockedError) Error() string {
	h := e.Holder
	mode := string(h.Kind)
	if h.Deleting {
		mode += ", deleting"
	}
	return fmt.Sprintf("repository at %s is locked (%s) by %s on host %s (pid %d) since %s, refreshed %s; "+
		"wait for it to finish, or if that process is dead run `rewind unlock --repo %s`",
		where(e.Location), mode, h.Purpose, h.Host, h.PID, h.Started.Format(time.RFC3339),
		h.Refreshed.Format(time.RFC3339), where(e.Location))
}

// Is makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockOptions configure Lock.
type LockOptions struct {
	Kind         LockKind
	Purpose      string
	RefreshEvery time.Duration // default DefaultRefreshEvery
	StaleAfter   time.Duration // default DefaultStaleAfter; locks not refreshed for this long are ignored and removed
	// SettleDelay is how long a contender waits before re-checking when two
	// lock attempts saw each other and it holds the smaller id.
	SettleDelay time.Duration // default DefaultSettleDelay
	// Wait keeps retrying a refused lock for this long (0: fail at once).
	Wait time.Duration
	Now  func() time.Time // default time.Now
	Host string           // default os.Hostname
	PID  int              // default os.Getpid
}

func (o *LockOptions) defaults() {
	if o.RefreshEvery <= 0 {
		o.RefreshEvery = DefaultRefreshEvery
	}
	if o.StaleAfter <= 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.SettleDelay <= 0 {
		o.SettleDelay = DefaultSettleDelay
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Host == "" {
		o.Host, _ = os.Hostname()
	}
	if o.PID == 0 {
		o.PID = os.Getpid()
	}
}

// Lock is a held repository lock.
type Lock struct {
	r    *Repository
	opts LockOptions
	mu   sync.Mutex
	info LockInfo
	// lastOK is when the lock object was last known written; once older
	// than StaleAfter others may have removed it.
	lastOK time.Time
	// lost is set once Refresh found the lock lost: it is never written again.
	lost bool
}

// Info returns the lock's current content.
func (l *Lock) Info() LockInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.info
}

// Lock takes a repository lock. It writes its lock object, then lists the
// others: if a conflicting live lock exists it removes its own and returns
// a *LockedError naming the holder (see docs/FORMAT.md for the protocol).
func (r *Repository) Lock(ctx context.Context, o LockOptions) (*Lock, error) {
	if err := lockTimingFromEnv(&o); err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	o.defaults()
	if o.Kind != LockExclusive && o.Kind != LockShared {
		return nil, fmt.Errorf("lock repository: kind %q: %w", o.Kind, ErrInvalid)
	}
	deadline := o.Now().Add(o.Wait)
	for {
		l, err := r.tryLock(ctx, o)
		if err == nil || !errors.Is(err, ErrLocked) || !o.Now().Before(deadline) {
			return l, err
		}
		// Jitter keeps two contenders that refused each other from
		// retrying in lockstep.
		if err := sleep(ctx, o.SettleDelay+time.Duration(randomUint(uint64(o.SettleDelay)))); err != nil {
			return nil, err
		}
	}
}

func (r *Repository) tryLock(ctx context.Context, o LockOptions) (*Lock, error) {
	// Look before writing: a contender that would only be refused writes
	// no lock object at all (a paused writer that wakes after a takeover
	// writes nothing).
	others, err := r.conflicting(ctx, LockInfo{Kind: o.Kind}, o)
	if err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if len(others) > 0 {
		return nil, &LockedError{Location: r.location, Holder: others[0]}
	}
	now := o.Now().UTC()
	l := &Lock{r: r, opts: o, lastOK: now, info: LockInfo{ID: randomHex(8), Kind: o.Kind,
		Purpose: o.Purpose, Host: o.Host, PID: o.PID, Started: now, Refreshed: now, StaleAfterMS: o.StaleAfter.Milliseconds()}}
	if err := l.write(ctx); err != nil {
		return nil, fmt.Errorf("lock repository: %w", err)
	}
	if err := l.settle(ctx); err != nil {
		_ = r.deleteIfExists(context.WithoutCancel(ctx), lockKey(l.info.ID))
		return nil, err
	}
	if o.Kind == LockExclusive {
		r.store.fence.Store(l)
	}
	return l, nil
}

// settle resolves contention after the lock object is written: no conflict
// means the lock is held. When two contenders see each other, the one with
// the larger id withdraws at once and the other re-checks after a delay; a
// contender holds the lock only if its last listing showed no conflict.
func (l *Lock) settle(ctx context.Context) error {
	for attempt := 0; ; attempt++ {
		others, err := l.r.conflicting(ctx, l.Info(), l.opts)
		if err != nil {
			return fmt.Errorf("lock repository: %w", err)
		}
		if len(others) == 0 {
			return nil
		}
		if attempt > 0 || others[0].ID < l.info.ID {
			return &LockedError{Location: l.r.location, Holder: others[0]}
		}
		if err := sleep(ctx, l.opts.SettleDelay); err != nil {
			return err
		}
	}
}

// conflicting lists live locks other than self that conflict with self,
// smallest id first. Stale locks are removed on the way.
func (r *Repository) conflicting(ctx context.Context, self LockInfo, o LockOptions) ([]LockInfo, error) {
	locks, err := r.ListLocks(ctx)
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, other := range locks {
		switch {
		case other.ID == self.ID:
		case other.Stale(o.Now(), o.StaleAfter) || deadHolder(other, o.Host):
			if err := r.deleteIfExists(ctx, lockKey(other.ID)); err != nil {
				return nil, err
			}
			e := AuditEntry{Action: AuditLockBreak, Detail: "removed the abandoned (stale, or its process gone) " + lockHolder(other) + " to take a " + string(o.Kind) + " lock for " + o.Purpose}
			if err := r.RecordAudit(ctx, e); err != nil {
				return nil, err
			}
		case conflicts(self, other):
			out = append(out, other)
		}
	}
	return out, nil
}

// deadHolder reports whether a lock's holder ran on this host and is gone:
// after a crash or kill -9 on the same host the lock need not wait to go
// stale (restic does the same). Other hosts' locks only ever go stale.
func deadHolder(l LockInfo, host string) bool {
	if l.Host != host || l.PID <= 0 || l.PID == os.Getpid() {
		return false
	}
	return !processAlive(l.PID)
}

// ListLocks returns every lock object in id order, stale ones included. A
// lock object that cannot be decoded is reported as an error: remove it with
// BreakLocks.
func (r *Repository) ListLocks(ctx context.Context) ([]LockInfo, error) {
	infos, err := r.listKeys(ctx, prefixLocks)
	if err != nil {
		return nil, err
	}
	var out []LockInfo
	for _, i := range infos {
		payload, _, err := r.getObject(ctx, i.Key, KindLock)
		if errors.Is(err, storage.ErrNotFound) {
			continue // released since the listing
		}
		if err != nil {
			return nil, fmt.Errorf("%w; if it persists run `rewind unlock --repo %s`", err, where(r.location))
		}
		info, err := decodeLock(payload)
		if err == nil && lockKey(info.ID) != i.Key {
			err = fmt.Errorf("%w: lock object holds id %s", ErrCorrupt, info.ID)
		}
		if err != nil {
			return nil, fmt.Errorf("decode object %s: %w", i.Key, err)
		}
		out = append(out, info)
	}
	return out, nil
}

// decodeLock parses and checks a lock payload.
func decodeLock(payload []byte) (LockInfo, error) {
	var info LockInfo
	if err := bson.Unmarshal(payload, &info); err != nil {
		return info, fmt.Errorf("%w: lock: %v", ErrCorrupt, err)
	}
	if !validID(info.ID, "") || (info.Kind != LockExclusive && info.Kind != LockShared) ||
		(info.Deleting && info.Kind != LockExclusive) {
		return info, fmt.Errorf("%w: lock: bad id %q or kind %q", ErrCorrupt, info.ID, info.Kind)
	}
	return info, nil
}

// BreakLocks removes lock objects: all of them, or with staleOnly only those
// not refreshed within staleAfter. It returns how many it removed. Breaking
// a live holder's lock makes its next Refresh fail with ErrLockLost.
func (r *Repository) BreakLocks(ctx context.Context, staleOnly bool, staleAfter time.Duration, now time.Time) (int, error) {
	infos, err := r.listKeys(ctx, prefixLocks)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, i := range infos {
		// An undecodable lock is removed in either mode, named by its key.
		holder := "undecodable lock " + i.Key
		payload, _, err := r.getObject(ctx, i.Key, KindLock)
		if errors.Is(err, storage.ErrNotFound) {
			continue // released since the listing
		}
		if info, derr := decodeLock(payload); err == nil && derr == nil {
			if staleOnly && !info.Stale(now, staleAfter) {
				continue
			}
			holder = lockHolder(info)
		}
		if err := r.deleteIfExists(ctx, i.Key); err != nil {
			return n, err
		}
		n++
		// The entry follows the delete: a lock is removed to unblock
		// others, and a repository whose storage refuses the entry has
		// bigger problems than one lock.
		if err := r.RecordAudit(ctx, AuditEntry{Action: AuditUnlock, Detail: "removed the " + holder}); err != nil {
			return n, err
		}
	}
	return n, nil
}

// lockHolder names a lock and its holder for an audit entry: "agent lock
// 1a2b3c4d5e6f7a8b (exclusive, host db1, pid 42, refreshed
// 2026-11-30T01:00:00Z)".
func lockHolder(l LockInfo) string {
	return fmt.Sprintf("%s lock %s (%s, host %s, pid %d, refreshed %s)", l.Purpose, l.ID, l.Kind, l.Host, l.PID,
		l.Refreshed.UTC().Format(time.RFC3339))
}
