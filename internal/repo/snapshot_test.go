package repo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestSnapshotManifestWrittenLast(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, newIdentity(t), "")
	rng := rngFor(t)
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	id := NewSnapshotID(now)
	coll := CollectionManifest{DB: "secretdb", Name: "secretcoll", UUID: "0f8e2c1a9b3d4e5f8a7b6c5d4e3f2a1b"}
	var docs [][]bson.Raw
	for n := 0; n < 3; n++ {
		var chunk []bson.Raw
		for i := 0; i < 20; i++ {
			chunk = append(chunk, randomDoc(rng, 500))
		}
		ref, err := r.WriteChunk(ctx, "rs0", id, coll.UUID, n, chunk)
		if err != nil {
			t.Fatal(err)
		}
		coll.Chunks = append(coll.Chunks, ref)
		coll.Count += ref.Count
		coll.Bytes += ref.Bytes
		docs = append(docs, chunk)
	}
	if refs, _ := r.ListSnapshots(ctx, ""); len(refs) != 0 {
		t.Fatalf("snapshot without a manifest is listed: %v", refs)
	}
	idx, _ := bson.Marshal(bson.D{{Key: "v", Value: 2}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}})
	coll.Indexes = []bson.Raw{idx}
	m := Manifest{ID: id, Shard: "rs0", Flavor: "mongodb", Start: tsOf(100, 1), End: tsOf(120, 4),
		Started: now, Finished: now.Add(time.Minute), Collections: []CollectionManifest{coll}}
	// A manifest naming a chunk that is not stored is refused.
	bad := m
	bad.Collections = []CollectionManifest{coll}
	bad.Collections[0].Chunks = append(append([]ChunkRef(nil), coll.Chunks...), ChunkRef{
		Key: chunkKey("rs0", id, coll.UUID, 3), SHA256: coll.Chunks[0].SHA256, Count: 1, Bytes: 1})
	bad.Collections[0].Count++
	bad.Collections[0].Bytes++
	if err := r.WriteManifest(ctx, bad); err == nil {
		t.Fatal("manifest naming a missing chunk was written")
	}
	if err := r.WriteManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	refs, err := r.ListSnapshots(ctx, "")
	if err != nil || len(refs) != 1 || refs[0].ID != id || refs[0].Shard != "rs0" {
		t.Fatalf("list: %v %v", refs, err)
	}
	got, err := r.ReadManifest(ctx, "rs0", id)
	if err != nil || got.Collections[0].Name != "secretcoll" || got.End != m.End || len(got.Collections[0].Indexes) != 1 {
		t.Fatalf("manifest %+v, %v", got, err)
	}
	for n, ref := range got.Collections[0].Chunks {
		back, err := r.ReadChunk(ctx, ref)
		if err != nil {
			t.Fatal(err)
		}
		assertSameEntries(t, docs[n], back)
	}
	for k := range st.objs {
		if strings.Contains(k, "secret") {
			t.Fatalf("key %q holds a user name", k)
		}
	}
	// A chunk swapped for another one of the same snapshot is detected.
	c0, c1 := got.Collections[0].Chunks[0], got.Collections[0].Chunks[1]
	st.set(c0.Key, st.raw(c1.Key))
	if _, err := r.ReadChunk(ctx, c0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("swapped chunk: %v", err)
	}
	if err := r.DeleteSnapshot(ctx, "rs0", id); err != nil {
		t.Fatal(err)
	}
	if len(st.objs) != 1 { // only config left
		t.Fatalf("after delete: %d objects", len(st.objs))
	}
}

func TestManifestValidation(t *testing.T) {
	ok := Manifest{ID: "s1", Shard: "rs0", Collections: []CollectionManifest{{UUID: "c1", Count: 1, Bytes: 5,
		Chunks: []ChunkRef{{Key: chunkKey("rs0", "s1", "c1", 0), SHA256: make([]byte, 32), Count: 1, Bytes: 5}}}}}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
	cases := map[string]func(m *Manifest){
		"end before start": func(m *Manifest) { m.Start = tsOf(2, 0) },
		"chunk of another snapshot": func(m *Manifest) {
			m.Collections[0].Chunks[0].Key = chunkKey("rs0", "s2", "c1", 0)
		},
		"chunk out of order": func(m *Manifest) { m.Collections[0].Chunks[0].Key = chunkKey("rs0", "s1", "c1", 1) },
		"short checksum":     func(m *Manifest) { m.Collections[0].Chunks[0].SHA256 = []byte{1} },
		"count mismatch":     func(m *Manifest) { m.Collections[0].Count = 2 },
		"bad collection id":  func(m *Manifest) { m.Collections[0].UUID = "db/coll" },
	}
	for name, mutate := range cases {
		m := ok
		m.Collections = []CollectionManifest{ok.Collections[0]}
		m.Collections[0].Chunks = []ChunkRef{ok.Collections[0].Chunks[0]}
		mutate(&m)
		if err := m.validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// Shards names every shard with something stored: a snapshot with no
// oplog yet (a base snapshot of an empty oplog), an agent's heartbeat
// before its first segment, a timeline.
func TestShardsOfEveryKind(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	m := Manifest{ID: NewSnapshotID(now), Shard: "snaponly", Flavor: "mongodb", Start: tsOf(100, 1), End: tsOf(100, 1),
		Started: now, Finished: now, FromEmptyOplog: true}
	if err := r.WriteManifest(ctx, m); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHeartbeat(ctx, Heartbeat{Shard: "agentonly", Host: "h", PID: 1, Started: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteTimeline(ctx, TimelineInfo{Shard: "rs0", ID: "0aa", Flavor: "mongodb", Started: now}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteHeartbeat(ctx, Heartbeat{Shard: "rs0", Host: "h", PID: 1, Started: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	got, err := r.Shards(ctx)
	if want := []string{"agentonly", "rs0", "snaponly"}; err != nil || strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("Shards() = %v, %v; want %v", got, err, want)
	}
}
