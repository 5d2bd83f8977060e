package restore

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// clusterVector is one file of testdata/cluster-vectors (docs/TESTING.md,
// docs/SHARDING-OPLOG.md): every shard's snapshot state and oplog, and
// restore points with the merged state each must give.
type clusterVector struct {
	Name   string        `bson:"name"`
	About  string        `bson:"about"`
	Source string        `bson:"source"`
	Single bool          `bson:"replica_set"` // one shard, backed up as a replica set
	Shards []vectorShard `bson:"shards"`
	Points []vectorPoint `bson:"points"`
}

type vectorShard struct {
	Name         string     `bson:"name"`
	ConfigServer bool       `bson:"config_server"` // stored, never restored
	Before       bson.Raw   `bson:"before"`        // {"db.coll": [documents]}
	Entries      []bson.Raw `bson:"entries"`
	// CoveredThrough is the shard's heartbeat (how far its oplog is known
	// complete); absent: the newest entry of any shard.
	CoveredThrough *bson.Timestamp `bson:"covered_through"`
}

type vectorPoint struct {
	About        string         `bson:"about"`
	To           bson.Timestamp `bson:"to"`
	After        bson.Raw       `bson:"after"`         // {"db.coll": [documents]}: exactly these namespaces
	AfterIndexes bson.Raw       `bson:"after_indexes"` // {"db.coll": {"name": key}}: at least these
	Error        string         `bson:"error"`         // the restore is refused with this in its message
	Include      []string       `bson:"include"`       // --ns
}

func loadClusterVectors(t *testing.T) []clusterVector {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "cluster-vectors", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cluster vectors in testdata/cluster-vectors (%v)", err)
	}
	var out []clusterVector
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v clusterVector
		if err := bson.UnmarshalExtJSON(b, true, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if v.Name+".json" != filepath.Base(f) || len(v.Shards) == 0 || len(v.Points) == 0 {
			t.Fatalf("%s: name %q, %d shards, %d points: want the file's name, shards and points", f, v.Name, len(v.Shards), len(v.Points))
		}
		out = append(out, v)
	}
	return out
}

// TestClusterVectorsInMemory writes each vector into a file:// repository
// (every shard's snapshot, timeline, segments of two entries and
// heartbeat, as the agent stores them), plans each restore point with
// Prepare (which reads the range once, Resolve) and replays the plan with
// the restore's own replay (readOplog's merge by ts and look-ahead, the
// partitioned applier, SkipFromMigrate for a cluster) into a
// replay.Memory: server-free, so every form is covered.
func TestClusterVectorsInMemory(t *testing.T) {
	for _, v := range loadClusterVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			r := writeVectorRepo(t, v)
			for i, pt := range v.Points {
				ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
				p, err := Prepare(ctx, r, Request{To: When{TS: optime.Timestamp{T: pt.To.T, I: pt.To.I}}, Include: pt.Include})
				if !pointErrorOK(t, i, pt, err) {
					cancel()
					continue
				}
				m := replay.NewMemory()
				loadBefore(t, v, func(ns string, docs []bson.Raw) error {
					if db, coll, _ := strings.Cut(ns, "."); !p.Plan.Mapper.Match(db, coll) {
						return nil
					}
					return m.Load(ns, docs)
				})
				var rep Report
				err = replayInto(ctx, r, func(a *replay.Applier) { a.Memory = m }, p.Plan, Options{Parallel: 1, Server: &Server{}, Log: testLog(t)}, &indexBuilder{}, &rep)
				p.Release()
				cancel()
				if err != nil {
					t.Fatalf("point %d (%s): replay: %v", i, pt.About, err)
				}
				if rep.LastApplied.After(p.Plan.Target) {
					t.Errorf("point %d: last applied %s is after the restore point %s", i, rep.LastApplied, p.Plan.Target)
				}
				got := map[string][]bson.Raw{}
				for _, ns := range m.Namespaces() {
					got[ns] = m.Documents(ns)
				}
				idx := func(ns string) []bson.Raw { return m.Indexes(ns) }
				for _, d := range compareVectorState(pt, got, idx, nil) {
					t.Errorf("point %d (%s): %s", i, pt.About, d)
				}
			}
		})
	}
}

// TestClusterVectorsOnServer runs the same repositories through the whole
// restore (Prepare, Use, Execute) into a test server, each vector's
// databases renamed to the server's own names, and compares what the
// server holds.
func TestClusterVectorsOnServer(t *testing.T) {
	target := testserver.Start(t)
	for _, v := range loadClusterVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			r := writeVectorRepo(t, v)
			rename := map[string]string{}
			for _, db := range vectorDBs(t, v) {
				rename[db] = target.DB(fmt.Sprintf("%s_%s", strings.ReplaceAll(v.Name, "-", "_")[:min(20, len(v.Name))], db))
			}
			for i, pt := range v.Points {
				ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
				req := Request{To: When{TS: optime.Timestamp{T: pt.To.T, I: pt.To.I}}, Include: pt.Include, Rename: rename, Drop: true}
				p, err := Prepare(ctx, r, req)
				if !pointErrorOK(t, i, pt, err) {
					cancel()
					continue
				}
				tg, err := Use(ctx, target.Client())
				if err == nil {
					_, err = p.Execute(ctx, tg, Options{Parallel: 2, Log: testLog(t)})
				}
				p.Release()
				if err != nil {
					cancel()
					t.Fatalf("point %d (%s): restore: %v", i, pt.About, err)
				}
				got, indexes := serverState(ctx, t, target.Client(), rename)
				for _, d := range compareVectorState(pt, got, func(ns string) []bson.Raw { return indexes[ns] }, rename) {
					t.Errorf("point %d (%s): %s", i, pt.About, d)
				}
				for _, db := range rename {
					if err := target.Client().Database(db).Drop(ctx); err != nil {
						t.Fatal(err)
					}
				}
				cancel()
			}
		})
	}
}

// pointErrorOK checks a point's error against the one it expects and
// reports whether the restore went ahead.
func pointErrorOK(t *testing.T, i int, pt vectorPoint, err error) bool {
	t.Helper()
	switch {
	case pt.Error != "" && (err == nil || !strings.Contains(err.Error(), pt.Error)):
		t.Fatalf("point %d (%s): got %v, want an error saying %q", i, pt.About, err, pt.Error)
	case pt.Error == "" && err != nil:
		t.Fatalf("point %d (%s): plan: %v", i, pt.About, err)
	}
	if err != nil {
		t.Logf("point %d (%s): refused as expected: %v", i, pt.About, err)
	}
	return err == nil
}

// writeVectorRepo stores the vector as a capture would: for each shard a
// timeline whose first segment (two no-ops) a snapshot of before spans,
// then its entries two to a segment, and a heartbeat. A cluster's
// repository names its shards (not the config server) in its config.
func writeVectorRepo(t *testing.T, v clusterVector) *repo.Repository {
	t.Helper()
	ctx := t.Context()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	first, newest := vectorSpan(t, v)
	t0 := time.Unix(int64(first.T)-60, 0).UTC()
	src := repo.Source{Flavor: "mongodb", CreatedBy: "cluster vectors"}
	if !v.Single {
		src.Cluster = &repo.Cluster{}
		for _, sh := range v.Shards {
			if !sh.ConfigServer {
				src.Cluster.Shards = append(src.Cluster.Shards, repo.ClusterShard{Name: sh.Name})
			}
		}
	}
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Source: src, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range v.Shards {
		writeVectorShard(t, r, sh, t0, newest)
	}
	return r
}

func writeVectorShard(t *testing.T, r *repo.Repository, sh vectorShard, t0 time.Time, newest optime.Timestamp) {
	t.Helper()
	ctx := t.Context()
	tl := repo.NewTimelineID()
	must(t, r.WriteTimeline(ctx, repo.TimelineInfo{Shard: sh.Name, ID: tl, Flavor: "mongodb", Started: t0}))
	var noops []bson.Raw
	for i := range uint32(2) {
		b, err := bson.Marshal(bson.D{{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}},
			{Key: "ts", Value: bson.Timestamp{T: uint32(t0.Unix()), I: i + 1}}, {Key: "t", Value: int64(1)}, {Key: "v", Value: int64(2)}, {Key: "wall", Value: t0}})
		must(t, err)
		noops = append(noops, b)
	}
	seg, err := r.WriteSegmentAfter(ctx, sh.Name, tl, optime.Zero, noops)
	must(t, err)
	prev := seg.Last
	for i := 0; i < len(sh.Entries); i += 2 {
		s, err := r.WriteSegmentAfter(ctx, sh.Name, tl, prev, sh.Entries[i:min(i+2, len(sh.Entries))])
		must(t, err)
		prev = s.Last
	}
	id := t0.Format("20060102T150405Z") + "-0000abcd"
	m := repo.Manifest{ID: id, Shard: sh.Name, Flavor: "mongodb", Start: seg.First, End: seg.Last, Started: t0, Finished: t0}
	els, err := sh.Before.Elements()
	must(t, err)
	for i, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		cm := repo.CollectionManifest{DB: db, Name: coll, UUID: fmt.Sprintf("c%d", i)}
		idIndex, err := bson.Marshal(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}})
		must(t, err)
		cm.Indexes = []bson.Raw{idIndex}
		if docs := rawDocs(t, e.Value()); len(docs) > 0 {
			ref, err := r.WriteChunk(ctx, sh.Name, id, cm.UUID, 0, docs)
			must(t, err)
			cm.Chunks, cm.Count, cm.Bytes = []repo.ChunkRef{ref}, ref.Count, ref.Bytes
		}
		m.Collections = append(m.Collections, cm)
	}
	must(t, r.WriteManifest(ctx, m))
	covered := newest
	if sh.CoveredThrough != nil {
		covered = optime.Timestamp{T: sh.CoveredThrough.T, I: sh.CoveredThrough.I}
	}
	if covered.Before(prev) {
		covered = prev
	}
	must(t, r.WriteHeartbeat(ctx, repo.Heartbeat{Shard: sh.Name, Host: "vectors", Started: t0, Updated: covered.Time(),
		LastDurable: prev, CoveredThrough: covered}))
}

// vectorSpan is the first and newest entry ts over every shard.
func vectorSpan(t *testing.T, v clusterVector) (first, newest optime.Timestamp) {
	t.Helper()
	for _, sh := range v.Shards {
		for _, e := range sh.Entries {
			ts, err := optime.OfEntry(e)
			must(t, err)
			if first.IsZero() || ts.Before(first) {
				first = ts
			}
			if ts.After(newest) {
				newest = ts
			}
		}
	}
	return first, newest
}

func rawDocs(t *testing.T, v bson.RawValue) []bson.Raw {
	t.Helper()
	vals, err := v.Array().Values()
	must(t, err)
	out := make([]bson.Raw, len(vals))
	for i, d := range vals {
		out[i] = d.Document()
	}
	return out
}

// loadBefore loads every restored shard's before, one namespace at a
// time (several shards' documents of one namespace together), as the
// restore loads their snapshots.
func loadBefore(t *testing.T, v clusterVector, load func(ns string, docs []bson.Raw) error) {
	t.Helper()
	all := map[string][]bson.Raw{}
	var order []string
	for _, sh := range v.Shards {
		if sh.ConfigServer {
			continue
		}
		els, err := sh.Before.Elements()
		must(t, err)
		for _, e := range els {
			if _, ok := all[e.Key()]; !ok {
				order = append(order, e.Key())
			}
			all[e.Key()] = append(all[e.Key()], rawDocs(t, e.Value())...)
		}
	}
	for _, ns := range order {
		must(t, load(ns, all[ns]))
	}
}

// vectorDBs are the databases the vector's restored shards hold or write.
func vectorDBs(t *testing.T, v clusterVector) []string {
	t.Helper()
	seen := map[string]bool{}
	for _, pt := range v.Points {
		if pt.After == nil {
			continue
		}
		els, err := pt.After.Elements()
		must(t, err)
		for _, e := range els {
			db, _, _ := strings.Cut(e.Key(), ".")
			seen[db] = true
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// serverState reads every collection of the renamed databases: documents
// and index specs by target namespace.
func serverState(ctx context.Context, t *testing.T, c *mongo.Client, rename map[string]string) (map[string][]bson.Raw, map[string][]bson.Raw) {
	t.Helper()
	docs, indexes := map[string][]bson.Raw{}, map[string][]bson.Raw{}
	for _, db := range rename {
		names, err := c.Database(db).ListCollectionNames(ctx, bson.D{})
		must(t, err)
		for _, n := range names {
			coll := c.Database(db).Collection(n)
			cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
			must(t, err)
			var ds []bson.Raw
			must(t, cur.All(ctx, &ds))
			docs[db+"."+n] = ds
			cur, err = coll.Indexes().List(ctx)
			must(t, err)
			var ix []bson.Raw
			must(t, cur.All(ctx, &ix))
			indexes[db+"."+n] = ix
		}
	}
	return docs, indexes
}

// compareVectorState compares a restored state (documents by namespace)
// with a point's after: the same namespaces, each with the same documents
// byte for byte (as a set by _id), and at least after_indexes' indexes
// with their keys. rename maps the vector's databases to the target's.
func compareVectorState(pt vectorPoint, got map[string][]bson.Raw, indexes func(ns string) []bson.Raw, rename map[string]string) []string {
	var diffs []string
	mapNS := func(ns string) string {
		db, coll, _ := strings.Cut(ns, ".")
		if to, ok := rename[db]; ok {
			return to + "." + coll
		}
		return ns
	}
	els, _ := pt.After.Elements()
	want := map[string][]bson.Raw{}
	for _, e := range els {
		vals, _ := e.Value().Array().Values()
		for _, d := range vals {
			want[mapNS(e.Key())] = append(want[mapNS(e.Key())], d.Document())
		}
		if _, ok := want[mapNS(e.Key())]; !ok {
			want[mapNS(e.Key())] = nil
		}
	}
	for ns := range got {
		if _, ok := want[ns]; !ok {
			diffs = append(diffs, fmt.Sprintf("namespace %s exists, want none (%d documents)", ns, len(got[ns])))
		}
	}
	for ns, docs := range want {
		have, ok := got[ns]
		if !ok {
			diffs = append(diffs, fmt.Sprintf("namespace %s is missing", ns))
			continue
		}
		if a, b := byID(docs), byID(have); !maps.Equal(a, b) {
			diffs = append(diffs, fmt.Sprintf("%s holds %s, want %s", ns, ejsonAll(have), ejsonAll(docs)))
		}
	}
	if pt.AfterIndexes != nil {
		ies, _ := pt.AfterIndexes.Elements()
		for _, e := range ies {
			ns := mapNS(e.Key())
			specs := map[string]bson.Raw{}
			for _, ix := range indexes(ns) {
				name, _ := ix.Lookup("name").StringValueOK()
				specs[name], _ = ix.Lookup("key").DocumentOK()
			}
			wantIx, _ := e.Value().Document().Elements()
			for _, w := range wantIx {
				if k, ok := specs[w.Key()]; !ok || !keysEqual(k, w.Value().Document()) {
					diffs = append(diffs, fmt.Sprintf("%s: index %s is %v, want key %s", ns, w.Key(), k, w.Value().Document()))
				}
			}
		}
	}
	sort.Strings(diffs)
	return diffs
}

// keysEqual compares index keys by field order and numeric value (a
// server may answer 1 as an int32 or a double).
func keysEqual(a, b bson.Raw) bool {
	ae, _ := a.Elements()
	be, _ := b.Elements()
	return slices.EqualFunc(ae, be, func(x, y bson.RawElement) bool {
		xf, xok := x.Value().AsFloat64OK()
		yf, yok := y.Value().AsFloat64OK()
		return x.Key() == y.Key() && (xok && yok && xf == yf || x.Value().Equal(y.Value()))
	})
}

func byID(docs []bson.Raw) map[string]string {
	out := map[string]string{}
	for _, d := range docs {
		out[d.Lookup("_id").String()] = string(d)
	}
	return out
}

func ejsonAll(docs []bson.Raw) string {
	var parts []string
	for _, d := range docs {
		b, _ := bson.MarshalExtJSON(d, true, false)
		parts = append(parts, string(b))
	}
	sort.Strings(parts)
	return "[" + strings.Join(parts, ", ") + "]"
}

// testLog logs into the test, and fails it on a warning: no vector's
// restore has anything to warn about (a commit whose prepare was not
// replayed, above all), but that orphans are not skipped: a vector's
// shards are snapshotted one by one, with no cluster snapshot's routing
// metadata (the orphan filter has its own tests, orphan_test.go).
func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(failOnWarn{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type failOnWarn struct{ t *testing.T }

func (w failOnWarn) Write(p []byte) (int, error) {
	line := string(bytes.TrimRight(p, "\n"))
	expected := strings.Contains(line, `msg="orphaned documents are not skipped`)
	if (strings.Contains(line, "level=WARN") && !expected) || strings.Contains(line, "level=ERROR") {
		w.t.Errorf("restore logged: %s", line)
	} else {
		w.t.Log(line)
	}
	return len(p), nil
}
