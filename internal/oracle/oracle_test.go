package oracle_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// runWorkload runs a seeded workload on s, recording a mark every 5 batches
// and one at the end.
func runWorkload(t *testing.T, s *testserver.Server, seed uint64, ops int, keepDocs bool) (*oracle.Recorder, workload.Stats) {
	t.Helper()
	ctx := context.Background()
	cfg := s.Workload(seed)
	cfg.Ops = ops
	cfg.LargeEvery = 100
	cfg.LargeSize = 100 << 10
	rec := &oracle.Recorder{Client: s.Client(), Filter: prefixFilter(s), Every: 5, KeepDocs: keepDocs}
	st, err := workload.Run(ctx, s.Client(), cfg, rec.OnBatch)
	if err != nil {
		t.Fatalf("run workload: %v", err)
	}
	if n := len(rec.Marks); n == 0 || rec.Marks[n-1].Ops != st.Ops {
		if _, err := rec.Record(ctx, workload.Batch{N: st.Batches, Ops: st.Ops, Writes: st.Writes()}); err != nil {
			t.Fatalf("record last mark: %v", err)
		}
	}
	return rec, st
}

// prefixFilter selects the workload's databases on s.
func prefixFilter(s *testserver.Server) oracle.Filter {
	return oracle.Filter{Include: workload.Databases(s.Workload(0))}
}

// renameTo maps the databases of a's workload to those of b's.
func renameTo(a, b *testserver.Server) map[string]string {
	m := map[string]string{}
	da, db := workload.Databases(a.Workload(0)), workload.Databases(b.Workload(0))
	for i := range da {
		m[da[i]] = db[i]
	}
	return m
}

// TestSameSeedSameState runs the same seed on two fresh servers: every mark
// must hash the same, and Compare across them (under a rename) must pass.
func TestSameSeedSameState(t *testing.T) {
	s1, s2 := testserver.Start(t), testserver.Start(t)
	rec1, st1 := runWorkload(t, s1, 42, 300, false)
	rec2, st2 := runWorkload(t, s2, 42, 300, false)
	if st1.Writes() != st2.Writes() || st1.Inserts != st2.Inserts || st1.Deletes != st2.Deletes {
		t.Fatalf("same seed, different operations: %+v vs %+v", st1, st2)
	}
	if len(rec1.Marks) != len(rec2.Marks) || len(rec1.Marks) < 3 {
		t.Fatalf("marks: %d vs %d, want the same, at least 3", len(rec1.Marks), len(rec2.Marks))
	}
	rename := renameTo(s1, s2)
	for i := range rec1.Marks {
		m1, m2 := rec1.Marks[i], rec2.Marks[i]
		if len(m1.State) != 3*4 || len(m1.State) != len(m2.State) {
			t.Fatalf("mark %d: %d vs %d collections, want 12", i+1, len(m1.State), len(m2.State))
		}
		for ns, c1 := range m1.State {
			db, coll, _ := strings.Cut(ns, ".")
			c2 := m2.State[rename[db]+"."+coll]
			if c2 == nil || c1.Hash != c2.Hash || c1.Meta != c2.Meta {
				t.Fatalf("mark %d, %s: state differs between two runs of the same seed", i+1, ns)
			}
		}
		if i > 0 && !m1.TS.After(rec1.Marks[i-1].TS) {
			t.Fatalf("mark %d ts %s not after the previous (%s)", i+1, m1.TS, rec1.Marks[i-1].TS)
		}
	}
	last := rec1.Marks[len(rec1.Marks)-1]
	// On a shared external deployment other tests write too; here nobody does.
	if ts, err := oracle.LastOplogTS(context.Background(), s1.Client()); !s1.External() && (err != nil || ts != last.TS) {
		t.Fatalf("last mark at %s, newest oplog entry at %s (%v): want the same", last.TS, ts, err)
	}
	if err := oracle.Compare(context.Background(), s2.Client(), last, oracle.Filter{Include: prefixFilter(s1).Include, Rename: rename}); err != nil {
		t.Fatalf("compare the same seed's end state across servers: %v", err)
	}
	// An earlier mark is a different state: Compare must say so.
	if err := oracle.Compare(context.Background(), s2.Client(), rec1.Marks[0], oracle.Filter{Include: prefixFilter(s1).Include, Rename: rename}); err == nil {
		t.Fatal("compare against the first mark passed on the final state")
	}
}

// TestCompareNamesTheDocument changes one byte of one document and expects
// Compare to name that document with both versions.
func TestCompareNamesTheDocument(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	rec, _ := runWorkload(t, s, 9, 200, true)
	mark := rec.Marks[len(rec.Marks)-1]
	if err := oracle.Compare(ctx, s.Client(), mark, prefixFilter(s)); err != nil {
		t.Fatalf("unchanged deployment differs from its own mark: %v", err)
	}

	ns := workload.Namespaces(s.Workload(0))[1] // "a.b" in the first database
	coll := s.Client().Database(ns.DB).Collection(ns.Coll)
	var doc bson.Raw
	cur, err := coll.Find(ctx, bson.D{{Key: "u", Value: bson.D{{Key: "$exists", Value: true}}}})
	if err != nil || !cur.Next(ctx) {
		t.Fatalf("find a document with u in %s: %v", ns, err)
	}
	doc = append(bson.Raw(nil), cur.Current...)
	cur.Close(ctx)
	changed := flipU(t, doc)
	id := doc.Lookup("_id")
	if _, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, changed); err != nil {
		t.Fatalf("replace: %v", err)
	}

	err = oracle.Compare(ctx, s.Client(), mark, prefixFilter(s))
	var m *oracle.Mismatch
	if !errors.As(err, &m) {
		t.Fatalf("compare after changing one byte: %v, want a *Mismatch", err)
	}
	t.Logf("the report:\n%v", err)
	idJSON, _ := bson.MarshalExtJSON(bson.D{{Key: "x", Value: id}}, true, false)
	if m.What != "document" || m.NS != ns.String() || !strings.Contains(string(idJSON), m.ID) {
		t.Fatalf("mismatch %q in %s _id %s, want a document in %s _id %s", m.What, m.NS, m.ID, ns, idJSON)
	}
	if !strings.Contains(m.Want, `"u"`) || !strings.Contains(m.Got, `"u"`) || m.Want == m.Got {
		t.Fatalf("want/got should show both documents:\nwant %s\ngot  %s", m.Want, m.Got)
	}

	// A filter that leaves the changed collection out passes.
	other := workload.Namespaces(s.Workload(0))[0]
	if err := oracle.Compare(ctx, s.Client(), mark, oracle.Filter{Include: []string{other.String()}}); err != nil {
		t.Fatalf("compare of an untouched collection: %v", err)
	}
}

// flipU returns doc with one byte of its "u" value changed.
func flipU(t *testing.T, doc bson.Raw) bson.Raw {
	t.Helper()
	val := doc.Lookup("u")
	i := strings.Index(string(doc), string(append([]byte("u\x00"), val.Value...)))
	if i < 0 {
		t.Fatal("u not found in the raw document")
	}
	out := append(bson.Raw(nil), doc...)
	out[i+2] ^= 0x01 // the lowest byte of the little-endian int64
	return out
}

func TestMissingExtraAndIndexes(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	rec, _ := runWorkload(t, s, 11, 120, false)
	mark := rec.Marks[len(rec.Marks)-1]
	ns := workload.Namespaces(s.Workload(0))[0]
	coll := s.Client().Database(ns.DB).Collection(ns.Coll)

	expect := func(what string) *oracle.Mismatch {
		t.Helper()
		var m *oracle.Mismatch
		if err := oracle.Compare(ctx, s.Client(), mark, prefixFilter(s)); !errors.As(err, &m) || m.What != what {
			t.Fatalf("compare: %v, want a %q mismatch", err, what)
		}
		return m
	}

	extra := bson.D{{Key: "_id", Value: "zz-extra"}, {Key: "x", Value: 1}}
	if _, err := coll.InsertOne(ctx, extra); err != nil {
		t.Fatal(err)
	}
	if m := expect("extra document"); m.ID != `"zz-extra"` || !strings.Contains(m.Got, "zz-extra") {
		t.Fatalf("extra document reported as %+v", m)
	}
	coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: "zz-extra"}})

	var first bson.Raw
	if err := coll.FindOne(ctx, bson.D{}).Decode(&first); err != nil {
		t.Fatal(err)
	}
	coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: first.Lookup("_id")}})
	if m := expect("missing document"); m.Got != "missing" {
		t.Fatalf("missing document reported as %+v", m)
	}
	if _, err := coll.InsertOne(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := oracle.Compare(ctx, s.Client(), mark, prefixFilter(s)); err != nil {
		t.Fatalf("after putting the document back: %v", err)
	}

	if err := coll.Indexes().DropOne(ctx, "n_1"); err != nil {
		t.Fatalf("drop index: %v", err)
	}
	expect("indexes")
	s.Client().Database(ns.DB).Collection("brand new").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	coll.Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}})
	expect("extra collection")
	s.Client().Database(ns.DB).Collection(ns.Coll).Drop(ctx)
	s.Client().Database(ns.DB).Collection("brand new").Drop(ctx)
	expect("missing collection")
}

func TestMarksRoundTrip(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	rec, _ := runWorkload(t, s, 5, 150, false)
	path := filepath.Join(t.TempDir(), "marks.json")
	if err := oracle.SaveMarks(path, rec.Marks); err != nil {
		t.Fatal(err)
	}
	marks, err := oracle.LoadMarks(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(marks) != len(rec.Marks) || marks[0].TS != rec.Marks[0].TS {
		t.Fatalf("loaded %d marks (first ts %s), saved %d (%s)", len(marks), marks[0].TS, len(rec.Marks), rec.Marks[0].TS)
	}
	last := marks[len(marks)-1]
	if err := oracle.Compare(ctx, s.Client(), last, prefixFilter(s)); err != nil {
		t.Fatalf("compare with a loaded mark: %v", err)
	}
	// Without kept documents the report still names the document.
	var ns workload.Namespace
	for _, n := range workload.Namespaces(s.Workload(0)) {
		if c := last.State[n.String()]; c != nil && c.Docs > 0 {
			ns = n
			break
		}
	}
	coll := s.Client().Database(ns.DB).Collection(ns.Coll)
	var doc bson.Raw
	if err := coll.FindOne(ctx, bson.D{}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: doc.Lookup("_id")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "extra", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	var m *oracle.Mismatch
	if err := oracle.Compare(ctx, s.Client(), last, prefixFilter(s)); !errors.As(err, &m) || m.What != "document" ||
		!strings.Contains(m.Want, "sha256") || !strings.Contains(m.Got, "extra") {
		t.Fatalf("compare with a loaded mark after an update: %v", err)
	}
}

// BenchmarkHash measures how fast the oracle hashes a deployment's state
// (docs/TESTING.md quotes it), against the raw read of the same documents
// measured in the same run: the ratio is the oracle's own cost.
//
//	go test -run '^$' -bench Hash ./internal/oracle/
func BenchmarkHash(b *testing.B) {
	s := testserver.Start(b)
	ctx := context.Background()
	cfg := s.Workload(3)
	cfg.Ops, cfg.LargeEvery, cfg.LargeSize = 300, 20, 256<<10
	if _, err := workload.Run(ctx, s.Client(), cfg, nil); err != nil {
		b.Fatal(err)
	}
	f := prefixFilter(s)
	var bytes int64
	b.Run("raw-read", func(b *testing.B) {
		for b.Loop() {
			bytes = readAll(b, s, f)
		}
		b.SetBytes(bytes)
	})
	b.Run("oracle", func(b *testing.B) {
		for b.Loop() {
			if _, err := oracle.Snapshot(ctx, s.Client(), f); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(bytes)
	})
}

// readAll reads every document the filter selects and returns their bytes.
func readAll(b *testing.B, s *testserver.Server, f oracle.Filter) int64 {
	ctx := context.Background()
	var n int64
	dbs, err := s.Client().ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		b.Fatal(err)
	}
	for _, db := range dbs {
		colls, err := s.Client().Database(db).ListCollectionNames(ctx, bson.D{})
		if err != nil {
			b.Fatal(err)
		}
		for _, c := range colls {
			if !f.Match(db, c) {
				continue
			}
			cur, err := s.Client().Database(db).Collection(c).Find(ctx, bson.D{})
			if err != nil {
				b.Fatal(err)
			}
			for cur.Next(ctx) {
				n += int64(len(cur.Current))
			}
			if err := cur.Close(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	return n
}
