package restore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// undo plans and runs an undo of (from, to] in the namespaces ns.
func undo(t *testing.T, r *rt.Repo, c *mongo.Client, req restore.UndoRequest) (restore.UndoReport, error) {
	t.Helper()
	req.Target = "mongodb://unused" // the test passes its client
	must(t, req.Validate())
	u, err := restore.PrepareUndo(context.Background(), r.Repository, req)
	if err != nil {
		return restore.UndoReport{}, err
	}
	defer u.Release()
	return u.Execute(context.Background(), use(t, c), restore.Options{Log: testLogger(t)})
}

func at2(ts optime.Timestamp) restore.When { return restore.When{TS: ts} }

// Undo of the bad deleteMany of peopleRepo (entries 1..10): every deleted
// document is back; one written again since is a conflict, listed and left
// alone, until --force puts it back too; everything else (the update
// before the range, the writes after it, the application's) survives. A
// dry run first says the same and writes nothing.
func TestUndoDeletes(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("ud")
	r := peopleRepo(t, db)
	live(t, r, c, db)
	coll := c.Database(db).Collection("people")
	_, err := coll.InsertMany(ctx, []any{person(7, "seven again"), person(204, "new since")})
	must(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "one live"}}}})
	must(t, err)
	before := byID(t, c, db, "people")
	want := byID(t, c, db, "people")
	for i := 3; i < 40; i += 4 {
		if i != 7 {
			put(t, want, person(i, fmt.Sprintf("p%d", i)))
		}
	}
	req := restore.UndoRequest{From: at2(rt.EntryTS(0)), To: at2(rt.EntryTS(10)), Include: []string{db + ".people"}, DryRun: true}

	rep, err := undo(t, r, c, req)
	must(t, err)
	sameDocs(t, "after the dry run", byID(t, c, db, "people"), before)
	wantCounts := restore.UndoCounts{Changed: 10, Reinserted: 9, ConflictsLeft: 1}
	if rep.UndoCounts != wantCounts || len(rep.Namespaces) != 1 || len(rep.Namespaces[0].Sample) != 9 ||
		len(rep.Namespaces[0].Conflicts) != 1 || rep.Namespaces[0].Conflicts[0].String() != `{"$numberInt":"7"}` {
		t.Fatalf("dry run: %+v; want %+v, 9 _ids listed and the conflict _id 7", rep, wantCounts)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases left after the dry run: %v", left)
	}

	req.DryRun = false
	rep, err = undo(t, r, c, req)
	must(t, err)
	sameDocs(t, "after the undo", byID(t, c, db, "people"), want)
	if rep.UndoCounts != wantCounts {
		t.Errorf("undo: %+v; want %+v", rep.UndoCounts, wantCounts)
	}
	// Run again: the documents put back are recognized, the conflict stays.
	rep, err = undo(t, r, c, req)
	must(t, err)
	if again := (restore.UndoCounts{Changed: 10, Unchanged: 9, ConflictsLeft: 1}); rep.UndoCounts != again {
		t.Errorf("the same undo again: %+v; want %+v", rep.UndoCounts, again)
	}
	req.Force = true
	rep, err = undo(t, r, c, req)
	must(t, err)
	put(t, want, person(7, "p7"))
	sameDocs(t, "after --force", byID(t, c, db, "people"), want)
	if forced := (restore.UndoCounts{Changed: 10, Unchanged: 9, ConflictsForced: 1}); rep.UndoCounts != forced {
		t.Errorf("undo --force: %+v; want %+v", rep.UndoCounts, forced)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases left: %v", left)
	}
}

// Undo of a range with an update, an insert and a replacement, limited by
// --filter as of --from: the update (_id 5, grp 1) is not selected by
// {"grp": 2}; the insert (_id 100, absent at --from) is selected by its
// version at --to only when it matches (then it is deleted); the
// replacement of _id 2 is put back.
func TestUndoFilter(t *testing.T) {
	srv := testserver.Start(t)
	c := srv.Client()
	db := srv.DB("uf")
	r := peopleRepo(t, db)
	live(t, r, c, db)
	full := restore.UndoRequest{From: at2(rt.EntryTS(-1)), To: restore.When{Latest: true}, Include: []string{db}}

	req := full
	req.Filter = `{"grp": 2}`
	want := byID(t, c, db, "people")
	put(t, want, person(2, "p2"))
	rep, err := undo(t, r, c, req)
	must(t, err)
	sameDocs(t, "after undo --filter grp 2", byID(t, c, db, "people"), want)
	if w := (restore.UndoCounts{Changed: 1, Restored: 1, NotSelected: 12}); rep.UndoCounts != w {
		t.Errorf("undo --filter grp 2: %+v; want %+v", rep.UndoCounts, w)
	}

	req.Filter = `{"$or": [{"grp": 3, "_id": {"$gt": 30}}, {"name": "hundred"}]}`
	delete(want, `{"$numberInt":"100"}`)
	put(t, want, person(31, "p31"))
	put(t, want, person(35, "p35"))
	put(t, want, person(39, "p39"))
	rep, err = undo(t, r, c, req)
	must(t, err)
	sameDocs(t, "after undo --filter grp 3", byID(t, c, db, "people"), want)
	if w := (restore.UndoCounts{Changed: 4, Reinserted: 3, Deleted: 1, NotSelected: 9}); rep.UndoCounts != w {
		t.Errorf("undo --filter grp 3: %+v; want %+v", rep.UndoCounts, w)
	}
}

// A collection dropped in the range is re-created as it was at --from,
// with its indexes and options, holding its documents as they were then.
// FerretDB logs no DDL, so a server cannot produce the drop entry: the
// repository is written by hand (restoretest), with the entry MongoDB
// logs; the undo itself runs against the test server.
func TestUndoDroppedCollection(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("ux")
	ns := db + ".gone"
	var docs []bson.D
	for i := range 20 {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "k", Value: int32(i * 2)}})
	}
	idx := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "k", Value: int32(1)}}}, {Key: "name", Value: "k_1"}}
	r := rt.New(t, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: db, Name: "gone", Docs: docs, Indexes: []bson.D{idx}}, {DB: db, Name: "kept", Docs: docs[:2]}},
		Entries: []bson.D{
			rt.Update(ns, int32(1), bson.D{{Key: "_id", Value: int32(1)}, {Key: "k", Value: "one"}}), // 0: before the range
			rt.Insert(ns, bson.D{{Key: "_id", Value: int32(50)}}),                                    // 1
			rt.Drop(db, "gone"), // 2
			rt.Insert(db+".kept", bson.D{{Key: "_id", Value: int32(9)}}), // 3: after the range
		}})
	live(t, r, c, db)
	if names, err := c.Database(db).ListCollectionNames(ctx, bson.D{}); err != nil || strings.Contains(fmt.Sprint(names), "gone") {
		t.Fatalf("the live deployment holds %v (%v); want gone dropped", names, err)
	}
	// What it was at --from: a restore of that point under another name.
	p := prepare(t, r, restore.Request{To: at2(rt.EntryTS(0)), Target: "t", Include: []string{ns}, Rename: map[string]string{db: db + "_then"}})
	_, err := p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	must(t, err)

	rep, err := undo(t, r, c, restore.UndoRequest{From: at2(rt.EntryTS(0)), To: at2(rt.EntryTS(2)), Include: []string{db}})
	must(t, err)
	if got, want := dump(t, c, db), dump(t, c, db+"_then"); !strings.Contains(got, want) {
		t.Fatalf("after the undo %s holds\n%s\nwant gone as it was at --from:\n%s", db, got, want)
	}
	if n := rep.Namespaces; len(n) != 1 || !n[0].Recreated || n[0].Reinserted != 20 || rep.Changed != 21 || rep.Unchanged != 1 {
		t.Errorf("report: %+v; want gone re-created, 20 re-inserted, _id 50 (inserted and dropped in the range) unchanged", rep)
	}
	if got := byID(t, c, db, "kept"); len(got) != 3 {
		t.Errorf("kept holds %v; want its 3 documents, the one inserted after the range included", got)
	}
}

// Bad input: --from after --to, a range outside the window, an unknown
// namespace, a range that renames a selected collection.
func TestUndoBadInput(t *testing.T) {
	srv := testserver.Start(t)
	c := srv.Client()
	db := srv.DB("ub")
	r := peopleRepo(t, db)
	for _, tc := range []struct {
		req   restore.UndoRequest
		field string
		want  string
	}{
		{restore.UndoRequest{From: at2(rt.EntryTS(5)), To: at2(rt.EntryTS(2)), Include: []string{db}}, "from", "is not before --to"},
		{restore.UndoRequest{From: at2(rt.EntryTS(5)), To: at2(rt.EntryTS(5)), Include: []string{db}}, "from", "is not before --to"},
		{restore.UndoRequest{From: at2(rt.EntryTS(5)), To: at2(rt.EntryTS(8))}, "ns", "--ns is required"},
		{restore.UndoRequest{From: restore.When{Latest: true}, To: at2(rt.EntryTS(8)), Include: []string{db}}, "from", "--from latest: nothing comes after it"},
		{restore.UndoRequest{To: at2(rt.EntryTS(8)), Include: []string{db}}, "from", "--from is required"},
		{restore.UndoRequest{From: at2(rt.EntryTS(5)), To: at2(rt.EntryTS(8)), Include: []string{db}, Filter: "{grp: 3}"}, "filter", "is not JSON"},
	} {
		tc.req.Target = "mongodb://unused"
		err := tc.req.Validate()
		var inv *restore.InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v; want a %s error saying %q", tc.req, err, tc.field, tc.want)
		}
	}
	for _, tc := range []struct {
		req  restore.UndoRequest
		want []string
	}{
		{restore.UndoRequest{From: at2(optime.Timestamp{T: uint32(rt.T0.Unix()) - 3600, I: 1}), To: at2(rt.EntryTS(2)), Include: []string{db}},
			[]string{"the range's start", "is in no restore window", "rewind list"}},
		{restore.UndoRequest{From: at2(rt.EntryTS(2)), To: at2(optime.Timestamp{T: uint32(rt.T0.Unix()) + 3600, I: 1}), Include: []string{db}},
			[]string{"the range's end", "is in no restore window"}},
		{restore.UndoRequest{From: at2(rt.EntryTS(2)), To: restore.When{Latest: true}, Include: []string{db + ".nope"}},
			[]string{"--ns " + db + ".nope matches nothing"}},
	} {
		_, err := undo(t, r, c, tc.req)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("undo %+v: %v; want it to say %q", tc.req, err, w)
			}
		}
	}
	renamed := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: db, Name: "a", Docs: []bson.D{{{Key: "_id", Value: 1}}}}},
		Entries: []bson.D{rt.Insert(db+".a", bson.D{{Key: "_id", Value: 2}}),
			{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: bson.D{{Key: "renameCollection", Value: db + ".a"}, {Key: "to", Value: db + ".b"}}}}}})
	_, err := undo(t, renamed, c, restore.UndoRequest{From: at2(rt.EntryTS(-1)), To: restore.When{Latest: true}, Include: []string{db}})
	if err == nil || !strings.Contains(err.Error(), "the range renames "+db+".a to "+db+".b") || !strings.Contains(err.Error(), "undo does not reverse renames") {
		t.Errorf("undo over a rename: %v; want it refused, naming the rename", err)
	}
}

// An undo stopped halfway says what it left, and its staging is gone:
// interrupted while staging (cancelled when the progress says the load
// runs), nothing was written; interrupted while writing (cancelled once
// the progress counts written documents), the undo had begun writing, and
// running it again finishes it: the documents put back already are
// recognized.
func TestUndoInterrupted(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("ui")
	var docs, entries []bson.D
	for i := range 4000 {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "pad", Value: strings.Repeat("x", 200)}})
		entries = append(entries, rt.Delete(db+".many", int32(i)))
	}
	r := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: db, Name: "many", Docs: docs}}, Entries: entries})
	must(t, c.Database(db).CreateCollection(ctx, "many")) // the live state: every document deleted
	req := restore.UndoRequest{From: at2(rt.EntryTS(-1)), To: restore.When{Latest: true}, Include: []string{db}, Target: "mongodb://unused"}
	must(t, req.Validate())

	interrupt := func(when func(*restore.Progress) bool, o restore.Options) error {
		t.Helper()
		u, err := restore.PrepareUndo(ctx, r.Repository, req)
		must(t, err)
		defer u.Release()
		o.Progress, o.Log = &restore.Progress{}, testLogger(t)
		cctx, cancel := context.WithCancel(ctx)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			_, err := u.Execute(cctx, use(t, c), o)
			done <- err
		}()
		waitFor(t, time.Minute, "the moment to interrupt", func() bool {
			select {
			case err := <-done:
				t.Fatalf("the undo ended (%v) before it could be interrupted", err)
			default:
			}
			return when(o.Progress)
		})
		cancel()
		return <-done
	}

	err := interrupt(func(p *restore.Progress) bool { return p.Phase() == "load" }, restore.Options{BatchBytes: 1})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was written to the target") {
		t.Fatalf("undo interrupted while staging: %v; want it cancelled, nothing written", err)
	}
	if n, err := c.Database(db).Collection("many").CountDocuments(ctx, bson.D{}); err != nil || n != 0 {
		t.Fatalf("the target holds %d documents (%v) after an undo interrupted while staging", n, err)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Fatalf("staging databases left after an interrupted undo: %v", left)
	}

	err = interrupt(func(p *restore.Progress) bool {
		done, _ := p.Documents()
		return p.Phase() == "apply" && done > 0
	}, restore.Options{})
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "the undo had begun writing in "+db+".many; run the same undo again to finish it") {
		t.Fatalf("undo interrupted while writing: %v; want it to say what it left and what to do", err)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Fatalf("staging databases left after an interrupted undo: %v", left)
	}
	rep, err := undo(t, r, c, req)
	must(t, err)
	if rep.Reinserted == 0 || rep.Unchanged == 0 || rep.Reinserted+rep.Unchanged != 4000 || rep.ConflictsLeft != 0 {
		t.Fatalf("the undo run again: %+v; want the rest re-inserted, the documents put back already unchanged", rep.UndoCounts)
	}
	want := map[string]string{}
	for _, d := range docs {
		put(t, want, d)
	}
	sameDocs(t, "after the undo run again", byID(t, c, db, "many"), want)
}
