package repo

import (
	"context"
	"errors"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/rewind-backup/rewind/internal/storage"
)

// TestFileBackend runs the main paths against the real file backend, so
// every key the format produces is checked by storage.ValidateKey and the
// directory layout works (no key is both an object and a directory).
func TestFileBackend(t *testing.T) {
	ctx := context.Background()
	url := "file://" + t.TempDir()
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := newIdentity(t)
	w, err := Init(ctx, st, InitOptions{Location: url, Recipient: id.Recipient().String(),
		Source: Source{Flavor: "ferretdb", Hosts: []string{"127.0.0.1:27017"}}})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := w.Lock(ctx, LockOptions{Kind: LockExclusive, Purpose: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	rng := rngFor(t)
	shard := ShardID("rs0")
	tl := NewTimelineID()
	if err := w.WriteTimeline(ctx, TimelineInfo{Shard: shard, ID: tl, Flavor: "ferretdb", Started: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var want [][]byte
	for i := 0; i < 3; i++ {
		es := entries(rng, uint32(100+10*i), 5, 300)
		for _, e := range es {
			want = append(want, e)
		}
		if _, err := w.WriteSegment(ctx, shard, tl, es); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.RecordGap(ctx, Gap{Shard: shard, Before: tsOf(200, 1), After: tsOf(300, 1), Detected: time.Now()}); err != nil {
		t.Fatal(err)
	}
	snap := NewSnapshotID(time.Now())
	ref, err := w.WriteChunk(ctx, shard, snap, "0f8e2c1a9b3d4e5f8a7b6c5d4e3f2a1b", 0, entries(rng, 1, 10, 100))
	if err != nil {
		t.Fatal(err)
	}
	m := Manifest{ID: snap, Shard: shard, Start: tsOf(100, 1), End: tsOf(101, 1), Collections: []CollectionManifest{{
		DB: "app", Name: "users", UUID: "0f8e2c1a9b3d4e5f8a7b6c5d4e3f2a1b", Count: ref.Count, Bytes: ref.Bytes, Chunks: []ChunkRef{ref}}}}
	if err := w.WriteManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteHeartbeat(ctx, Heartbeat{Shard: shard, Host: "h", Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := lock.Unlock(ctx); err != nil {
		t.Fatal(err)
	}

	// A fresh process with only the URL and the identity reads it all.
	st2, _ := storage.Open(ctx, url)
	defer st2.Close()
	r, err := Open(ctx, st2, OpenOptions{Location: url, Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	rl, err := r.Lock(ctx, LockOptions{Kind: LockShared, Purpose: "restore"})
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Unlock(ctx)
	h, err := r.History(ctx, shard)
	if err != nil || len(h.Timelines) != 1 || len(h.Gaps) != 1 || h.Timelines[0].Info == nil {
		t.Fatalf("history %+v, %v", h, err)
	}
	var got [][]byte
	for _, s := range h.Timelines[0].Segments {
		es, err := r.ReadSegment(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			got = append(got, e)
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	snaps, err := r.ListSnapshots(ctx, "")
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots %v, %v", snaps, err)
	}
	mm, err := r.ReadManifest(ctx, snaps[0].Shard, snaps[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if docs, err := r.ReadChunk(ctx, mm.Collections[0].Chunks[0]); err != nil || len(docs) != 10 {
		t.Fatalf("chunk: %d, %v", len(docs), err)
	}
	if _, err := Init(ctx, st2, InitOptions{Location: url}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("init twice: %v", err)
	}
}
