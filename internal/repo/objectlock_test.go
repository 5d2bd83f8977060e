package repo

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

// A locked repository on a store without object lock (a copy on a local
// disk) still opens and reads, but refuses to write anything it would
// have locked; locks, being mutable, still work.
func TestLockedRepositoryOnAStoreWithoutLock(t *testing.T) {
	ctx := context.Background()
	src, _ := newRepo(t, nil, CompressionZstd)
	seg, err := src.WriteSegment(ctx, "rs0", "tl1", entries(rngFor(t), 100, 5, 200))
	if err != nil {
		t.Fatal(err)
	}
	// The copy's config records a lock, as one made on S3 would.
	cfg := src.Config()
	cfg.ObjectLock = &ObjectLock{Mode: storage.LockCompliance, Days: 7}
	payload, err := bson.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := (&codec{}).encode(KindConfig, payload)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.store.Store.Put(ctx, configKey, bytes.NewReader(obj)); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, src.store.Store, OpenOptions{Location: "mem://copy"})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	if got, err := r.ReadSegment(ctx, seg); err != nil || len(got) != 5 {
		t.Fatalf("read a segment of the copy: %d entries, %v", len(got), err)
	}
	_, err = r.WriteSegment(ctx, "rs0", "tl1", entries(rngFor(t), 200, 5, 200))
	if err == nil || !strings.Contains(err.Error(), "object-locked") || !errors.Is(err, storage.ErrObjectLockUnsupported) {
		t.Fatalf("write to the copy: %v, want a refusal naming the object lock", err)
	}
	l, err := r.Lock(ctx, LockOptions{Kind: LockShared, Purpose: "test"})
	if err != nil {
		t.Fatalf("lock the copy: %v", err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	st, err := r.ObjectLockStatus(ctx)
	if err != nil || st.Lock == nil || st.Problem == "" {
		t.Fatalf("status %+v, %v: want the lock and why the store cannot apply it", st, err)
	}
}

// Compaction on a locked repository merges segments it cannot delete yet:
// no error, and the listing shows only the merged segment.
func TestCompactLockedSegments(t *testing.T) {
	ctx := t.Context()
	srv := storagetest.StartS3Locked(t)
	st, err := storage.OpenWith(ctx, srv.URL(), srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := Init(ctx, st, InitOptions{Source: Source{Flavor: "mongodb"}, ObjectLock: &ObjectLock{Mode: storage.LockGovernance, Days: 1}})
	if err != nil {
		t.Fatal(err)
	}
	rng := rngFor(t)
	var run []SegmentInfo
	for i := range 3 {
		s, err := r.WriteSegment(ctx, "rs0", "tl1", entries(rng, uint32(100+10*i), 3, 100))
		if err != nil {
			t.Fatal(err)
		}
		run = append(run, s)
	}
	merged, err := r.CompactSegments(ctx, run)
	if err != nil {
		t.Fatalf("compact locked segments: %v", err)
	}
	segs, err := r.ListSegments(ctx, "rs0")
	if err != nil || len(segs) != 1 || segs[0].Key != merged.Key {
		t.Fatalf("segments after compaction: %v %v, want only %s", segs, err, merged.Key)
	}
	if _, err := st.Stat(ctx, run[0].Key); err != nil {
		t.Fatalf("the retained small segment is gone: %v", err)
	}
	if got, err := r.ReadSegment(ctx, merged); err != nil || len(got) != 9 {
		t.Fatalf("merged segment: %d entries, %v", len(got), err)
	}
}
