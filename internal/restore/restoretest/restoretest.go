// Package restoretest writes small repositories by hand for restore tests:
// one snapshot of the given collections and an oplog timeline after it
// holding the given entries, exactly as a MongoDB (or FerretDB) source
// would have logged them. It reaches what the test server cannot produce:
// DDL entries (FerretDB logs none), a repository whose timeline and
// snapshot do not say their flavor, documents FerretDB would not write.
package restoretest

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Spec is what the repository holds.
type Spec struct {
	// Flavor is written in the timeline record and the snapshot manifest;
	// "" writes none there (a repository from before flavors were recorded).
	Flavor string
	// ConfigFlavor is the repository config's source flavor (Init's).
	ConfigFlavor string
	Collections  []Collection
	// ChunkDocs splits each collection's documents into chunks of this
	// many (0: one chunk per collection).
	ChunkDocs int
	// Entries are oplog entries after the snapshot, without "ts": each gets
	// the next second (and "t", "wall" when missing).
	Entries []bson.D
}

// Collection is one collection of the snapshot.
type Collection struct {
	DB, Name string
	Options  bson.D   // as listCollections shows them; nil: none
	Indexes  []bson.D // as listIndexes shows them; the _id index is added
	Docs     []bson.D
}

// T0 is the snapshot's time; entries follow it a second apart.
var T0 = time.Date(2026, 11, 20, 9, 0, 0, 0, time.UTC)

// Repo is a written repository and where its restore points are.
type Repo struct {
	*repo.Repository
	URL      string
	Snapshot repo.Manifest
	Last     optime.Timestamp // the last entry: what "latest" restores to
}

// New writes the repository under t.TempDir().
func New(t testing.TB, s Spec) *Repo {
	t.Helper()
	ctx := context.Background()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Source: repo.Source{Flavor: s.ConfigFlavor, CreatedBy: "restoretest"},
		Now: func() time.Time { return T0 }})
	must(t, err)
	out := &Repo{Repository: r, URL: url}
	tl := repo.NewTimelineID()
	must(t, r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs0", ID: tl, Flavor: s.Flavor, Started: T0}))
	base := uint32(T0.Unix())
	noop := func(i uint32) bson.Raw {
		return marshal(t, bson.D{{Key: "ts", Value: bson.Timestamp{T: base, I: i}}, {Key: "t", Value: int64(1)},
			{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}}})
	}
	first, err := r.WriteSegmentAfter(ctx, "rs0", tl, optime.Zero, []bson.Raw{noop(1), noop(2)})
	must(t, err)
	out.Last = first.Last
	var entries []bson.Raw
	for i, e := range s.Entries {
		ts := EntryTS(i)
		entries = append(entries, marshal(t, withTS(e, ts)))
		out.Last = ts
	}
	if len(entries) > 0 {
		_, err = r.WriteSegmentAfter(ctx, "rs0", tl, first.Last, entries)
		must(t, err)
	}
	out.Snapshot = writeSnapshot(t, r, s, first)
	return out
}

func writeSnapshot(t testing.TB, r *repo.Repository, s Spec, seg repo.SegmentInfo) repo.Manifest {
	ctx := context.Background()
	id := T0.Format("20060102T150405Z") + "-0000abcd"
	m := repo.Manifest{ID: id, Shard: "rs0", Flavor: s.Flavor, Start: seg.First, End: seg.Last, Started: T0, Finished: T0}
	for i, c := range s.Collections {
		cm := repo.CollectionManifest{DB: c.DB, Name: c.Name, UUID: fmt.Sprintf("c%d", i)}
		if c.Options != nil {
			cm.Options = marshal(t, c.Options)
		}
		cm.Indexes = append(cm.Indexes, marshal(t, bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}}))
		for _, ix := range c.Indexes {
			cm.Indexes = append(cm.Indexes, marshal(t, ix))
		}
		per := s.ChunkDocs
		if per <= 0 {
			per = len(c.Docs)
		}
		for n := 0; n*per < len(c.Docs); n++ {
			var docs []bson.Raw
			for _, d := range c.Docs[n*per : min((n+1)*per, len(c.Docs))] {
				docs = append(docs, marshal(t, d))
			}
			ref, err := r.WriteChunk(ctx, "rs0", id, cm.UUID, n, docs)
			must(t, err)
			cm.Chunks = append(cm.Chunks, ref)
			cm.Count, cm.Bytes = cm.Count+ref.Count, cm.Bytes+ref.Bytes
		}
		m.Collections = append(m.Collections, cm)
	}
	must(t, r.WriteManifest(ctx, m))
	return m
}

// withTS puts ts first and fills t and wall when e lacks them.
func withTS(e bson.D, ts optime.Timestamp) bson.D {
	out := bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}}
	has := map[string]bool{}
	for _, el := range e {
		has[el.Key] = true
	}
	if !has["t"] {
		out = append(out, bson.E{Key: "t", Value: int64(1)})
	}
	if !has["wall"] {
		out = append(out, bson.E{Key: "wall", Value: time.Unix(int64(ts.T), 0).UTC()})
	}
	return append(out, e...)
}

// EntryTS is the timestamp Spec.Entries[i] gets: restoring to it replays
// entries 0..i; EntryTS(-1) is the snapshot's end (no entry replayed).
func EntryTS(i int) optime.Timestamp {
	base := uint32(T0.Unix())
	if i < 0 {
		return optime.Timestamp{T: base, I: 2}
	}
	return optime.Timestamp{T: base + 10 + uint32(i), I: 1}
}

// Insert is an op "i" entry.
func Insert(ns string, doc bson.D) bson.D {
	return bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: doc}}
}

// Update is an op "u" entry of document id: o is the whole new document
// for a replacement (as MongoDB logs one), or update operators
// ({$v: 1, $set: {...}}, as FerretDB logs every update).
func Update(ns string, id any, o bson.D) bson.D {
	return bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o", Value: o}, {Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

// Delete is an op "d" entry.
func Delete(ns string, id any) bson.D {
	return bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
}

// Create is an op "c" create entry of db.coll with options.
func Create(db, coll string, options ...bson.E) bson.D {
	return bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"},
		{Key: "o", Value: append(bson.D{{Key: "create", Value: coll}}, options...)}}
}

// Drop is an op "c" drop entry of db.coll.
func Drop(db, coll string) bson.D {
	return bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: bson.D{{Key: "drop", Value: coll}}}}
}

func marshal(t testing.TB, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
