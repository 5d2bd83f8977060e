package repo

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// ObjectLock is a repository's immutability setting, recorded in its
// config: every object except the mutable ones (MutableKey) is written
// with an S3 Object Lock retention of Mode (storage.LockCompliance or
// storage.LockGovernance) for Days days after it is written.
type ObjectLock struct {
	Mode string `bson:"mode"`
	Days int    `bson:"days"`
}

func (l ObjectLock) storage() storage.ObjectLock {
	return storage.ObjectLock{Mode: l.Mode, Days: l.Days}
}

// RetainedUntil is when an object written at written is deletable at the
// latest: its retention began when its Put started, before the store
// stamped written, so written plus Days is never early.
func (l ObjectLock) RetainedUntil(written time.Time) time.Time {
	return written.Add(time.Duration(l.Days) * 24 * time.Hour)
}

// MutableKey reports whether rewind rewrites or removes key as part of
// normal work, whatever the object lock: locks, heartbeats, the balancer
// record, drill records and audit entries (written "started", then
// rewritten with their outcome: a locked store reads a key's oldest
// version, which would keep "started" for ever). They carry no retention
// (a lock could not be released) and nothing a restore needs.
func MutableKey(key string) bool {
	return strings.HasPrefix(key, prefixLocks) || strings.HasPrefix(key, prefixHeartbeats) ||
		strings.HasPrefix(key, prefixDrills) || strings.HasPrefix(key, prefixAudit) || key == balancerKey
}

// lockStore returns the store a repository with lock writes through: a
// locked view of store (storage.WithObjectLock), or, where store has no
// object lock (a copy of the repository on a local disk), store with
// every write of a retained key refused, so that reading and restoring
// still work but nothing is written unprotected.
func lockStore(store storage.Store, lock *ObjectLock) storage.Store {
	if lock == nil {
		return store
	}
	ls, err := storage.WithObjectLock(store, lock.storage(), MutableKey)
	if err != nil {
		return noLockStore{Store: store, err: err}
	}
	return ls
}

// noLockStore refuses to write retained keys of a locked repository.
type noLockStore struct {
	storage.Store
	err error
}

func (s noLockStore) Put(ctx context.Context, key string, r io.Reader) error {
	if !MutableKey(key) {
		return fmt.Errorf("put object %s: refused: the repository is object-locked and nothing may be written to it unlocked; write through its S3 bucket (%w)", key, s.err)
	}
	return s.Store.Put(ctx, key, r)
}

// ObjectLockStatus says whether the repository's objects are locked, for
// `rewind repo info`.
type ObjectLockStatus struct {
	// Lock is the config's setting; nil when the repository was made
	// without --object-lock.
	Lock *ObjectLock
	// Problem is "" when the store can lock objects (and, with Lock set,
	// does); otherwise why it cannot.
	Problem string
}

// ObjectLockStatus checks the store's object lock support (on S3 two
// requests: the bucket's Object Lock configuration and versioning).
func (r *Repository) ObjectLockStatus(ctx context.Context) (ObjectLockStatus, error) {
	st := ObjectLockStatus{Lock: r.cfg.ObjectLock}
	err := storage.CheckObjectLock(ctx, r.base)
	switch {
	case errors.Is(err, storage.ErrObjectLockUnsupported):
		st.Problem = strings.TrimSuffix(err.Error(), ": "+storage.ErrObjectLockUnsupported.Error())
	case err != nil:
		return st, fmt.Errorf("check object lock: %w", err)
	}
	return st, nil
}

// LockMargin is added to an object's retention before prune deletes it:
// the objects that go with it (a segment's index, a snapshot's last
// chunks) were written moments later and are retained as much longer.
const LockMargin = time.Hour

// LockedUntil returns, for every object under the prefixes, the time
// prune may delete it: when written plus the repository's object lock
// days plus LockMargin has passed. Nil when the repository has no
// object lock. One listing per prefix.
func (r *Repository) LockedUntil(ctx context.Context, prefixes ...string) (map[string]time.Time, error) {
	lock := r.cfg.ObjectLock
	if lock == nil {
		return nil, nil
	}
	out := map[string]time.Time{}
	for _, p := range prefixes {
		err := r.store.List(ctx, p, func(i storage.Info) error {
			out[i.Key] = lock.RetainedUntil(i.ModTime).Add(LockMargin)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", p, err)
		}
	}
	return out, nil
}

// SnapshotManifestKey is the key of a snapshot's manifest.
func SnapshotManifestKey(shard, id string) string { return manifestKey(shard, id) }
