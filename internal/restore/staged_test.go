package restore_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// person is a document of the people collection: grp is _id % 4.
func person(id int, name string) bson.D {
	return bson.D{{Key: "_id", Value: int32(id)}, {Key: "grp", Value: int32(id % 4)}, {Key: "name", Value: name}}
}

// peopleRepo is a hand-built repository: db.people holds 40 people (_id
// 0..39) and an index on grp; after the snapshot the oplog updates _id 5
// (entry 0: the restore point "before"), deletes every grp 3 document (a
// bad deleteMany, entries 1..10), inserts _id 100 in grp 3 and updates
// _id 2 (entries 11, 12).
func peopleRepo(t *testing.T, db string) *rt.Repo {
	var people []bson.D
	for i := range 40 {
		people = append(people, person(i, fmt.Sprintf("p%d", i)))
	}
	ns := db + ".people"
	entries := []bson.D{rt.Update(ns, int32(5), person(5, "five v2"))}
	for i := 3; i < 40; i += 4 {
		entries = append(entries, rt.Delete(ns, int32(i)))
	}
	entries = append(entries, rt.Insert(ns, person(100, "hundred")), rt.Update(ns, int32(2), person(2, "two v2")))
	idx := bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "grp", Value: int32(1)}}}, {Key: "name", Value: "grp_1"}}
	return rt.New(t, rt.Spec{Flavor: "mongodb", Entries: entries,
		Collections: []rt.Collection{{DB: db, Name: "people", Docs: people, Indexes: []bson.D{idx}}}})
}

// live restores the repository's latest state into db, as the deployment
// the later writes happen in.
func live(t *testing.T, r *rt.Repo, c *mongo.Client, db string) {
	t.Helper()
	p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Include: []string{db}})
	_, err := p.Execute(context.Background(), use(t, c), restore.Options{Log: testLogger(t)})
	must(t, err)
}

// stagingLeft lists the staging databases of this test's databases on the
// server (named after the source database, which carries the prefix).
func stagingLeft(t *testing.T, srv *testserver.Server) []string {
	t.Helper()
	names, err := srv.Client().ListDatabaseNames(context.Background(), bson.D{})
	must(t, err)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, restore.StagingPrefix) && strings.Contains(n, "_"+srv.Prefix()) {
			out = append(out, n)
		}
	}
	return out
}

// byID is a collection's documents keyed by their _id as extended JSON.
func byID(t *testing.T, c *mongo.Client, db, coll string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, d := range docs(t, c, db, coll) {
		out[d.Lookup("_id").String()] = d.String()
	}
	return out
}

func sameDocs(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s: _id %s is %s, want %s", what, id, orAbsent(got[id]), orAbsent(w))
		}
	}
	for id, g := range got {
		if _, ok := want[id]; !ok {
			t.Errorf("%s: _id %s is %s, want it absent", what, id, g)
		}
	}
}

func orAbsent(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

func put(t *testing.T, m map[string]string, d bson.D) {
	raw := marshal(t, d)
	m[raw.Lookup("_id").String()] = raw.String()
}

// The "done when": restore --filter '{"grp": 3}' --merge missing
// --to <before the bad delete> into the live collection restores exactly
// the deleted documents and nothing else; one of them written again in the
// meantime is left alone, as are the writes made since. The staging is
// gone afterwards.
func TestFilterMergeMissing(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("fm")
	r := peopleRepo(t, db)
	live(t, r, c, db)
	coll := c.Database(db).Collection("people")
	_, err := coll.InsertMany(ctx, []any{person(7, "seven again"), person(203, "new since")})
	must(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: int32(1)}}, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "one live"}}}})
	must(t, err)
	want := byID(t, c, db, "people")
	for i := 3; i < 40; i += 4 {
		if i != 7 {
			put(t, want, person(i, fmt.Sprintf("p%d", i)))
		}
	}

	p := prepare(t, r, restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Filter: `{"grp": 3}`, Merge: restore.MergeMissing})
	rep, err := p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	must(t, err)
	sameDocs(t, "after the filtered merge", byID(t, c, db, "people"), want)
	if m := rep.Merged; m.Inserted != 9 || m.LeftAlone != 1 || m.Replaced != 0 || !rep.Staged {
		t.Errorf("report: %+v; want 9 inserted, 1 left alone (_id 7, written again), 0 replaced", rep.Merged)
	}
	if len(rep.Namespaces) != 1 || rep.Namespaces[0].Merged != rep.Merged || rep.Namespaces[0].Final != int64(len(want)) {
		t.Errorf("namespaces: %+v; want people with the same counts and %d documents now", rep.Namespaces, len(want))
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases left after a successful restore: %v", left)
	}
}

// --merge overwrite replaces by _id exactly the documents it restores:
// those the target holds in another version are replaced, missing ones
// inserted, identical ones left alone, and every other document (another
// group, one written since) stays as it is.
func TestMergeOverwrite(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("mo")
	r := peopleRepo(t, db)
	live(t, r, c, db)
	coll := c.Database(db).Collection("people")
	_, err := coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: int32(6)}}, person(6, "six live"))
	must(t, err)
	_, err = coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: int32(10)}})
	must(t, err)
	_, err = coll.InsertOne(ctx, person(202, "new since"))
	must(t, err)
	want := byID(t, c, db, "people")
	for i := 2; i < 40; i += 4 {
		put(t, want, person(i, fmt.Sprintf("p%d", i)))
	}

	p := prepare(t, r, restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Filter: `{"grp": {"$eq": 2}}`, Merge: restore.MergeOverwrite})
	rep, err := p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	must(t, err)
	sameDocs(t, "after --merge overwrite", byID(t, c, db, "people"), want)
	// _id 2 (changed by the oplog since) and 6 (by the application) are
	// replaced, 10 is inserted, the other seven are the same bytes.
	if m := rep.Merged; m != (restore.Merged{Inserted: 1, Replaced: 2, LeftAlone: 7}) {
		t.Errorf("report: %+v; want 1 inserted, 2 replaced, 7 left alone", m)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases left: %v", left)
	}
}

// A filtered restore into a namespace the target lacks creates it with
// the backup's indexes and just the matching documents; without --merge a
// target holding documents is refused before anything is written.
func TestFilterIntoNewNamespace(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("fn")
	r := peopleRepo(t, db)
	p := prepare(t, r, restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Filter: `{"grp": 3, "_id": {"$lt": 20}}`,
		Rename: map[string]string{db + ".people": db + ".grp3"}, Include: []string{db + ".people"}})
	rep, err := p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	must(t, err)
	want := map[string]string{}
	for _, i := range []int{3, 7, 11, 15, 19} {
		put(t, want, person(i, fmt.Sprintf("p%d", i)))
	}
	sameDocs(t, "the new namespace", byID(t, c, db, "grp3"), want)
	if rep.Merged != (restore.Merged{Inserted: 5}) {
		t.Errorf("report: %+v; want 5 inserted", rep.Merged)
	}
	if got := dump(t, c, db); !strings.Contains(got, `grp_1{"grp": {"$numberInt":"1"}}`) {
		t.Errorf("the new namespace lacks the backup's index grp_1:\n%s", got)
	}
	// Again, now that it holds documents: refused, nothing written.
	p = prepare(t, r, restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Filter: `{"grp": 1}`,
		Rename: map[string]string{db + ".people": db + ".grp3"}, Include: []string{db + ".people"}})
	_, err = p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), "holds documents") {
		t.Fatalf("filtered restore into a collection holding documents: %v; want it refused", err)
	}
	sameDocs(t, "after the refusal", byID(t, c, db, "grp3"), want)
}

// The staging is removed whatever happens: after a filter the server
// refuses (found on the staging, before any write to the target) and
// after an interrupt during the staging's load (cancelled when the
// progress says the load runs). Either way the target is as it was.
// A staging left by a killed run a day ago is dropped by the next run; a
// younger one (another run may be using it) is left.
func TestStagingRemoved(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("sr")
	var many []bson.D
	for i := range 1000 {
		many = append(many, bson.D{{Key: "_id", Value: int32(i)}, {Key: "grp", Value: int32(i % 4)}})
	}
	r := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: db, Name: "many", Docs: many}},
		Entries: []bson.D{rt.Delete(db+".many", int32(3))}})
	old := restore.StagingPrefix + "0000001abc_" + srv.Prefix() + "x"                                        // started in 1970
	young := restore.StagingPrefix + base36(time.Now().Add(-time.Hour).Unix()) + "xyz_" + srv.Prefix() + "y" // an hour ago
	for _, n := range []string{old, young} {
		_, err := c.Database(n).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		must(t, err)
		t.Cleanup(func() { dropDBs(t, c, n) })
	}
	before := dump(t, c, db)

	// A filter the server refuses.
	p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Filter: `{"$foo": 1}`, Merge: restore.MergeMissing})
	_, err := p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	var inv *restore.InvalidError
	if !errors.As(err, &inv) || inv.Field != "filter" || !strings.Contains(err.Error(), "nothing was written to the target") {
		t.Fatalf("restore with a filter the server refuses: %v; want a --filter error saying nothing was written", err)
	}
	t.Logf("refused filter: %v", err)
	if left := stagingLeft(t, srv); len(left) != 1 || left[0] != young {
		t.Errorf("staging databases after a failed restore: %v; want only the other run's %s (the stale one dropped)", left, young)
	}

	// Interrupted while the staging loads: one document per insert keeps
	// the load going long enough to be caught there.
	prog := &restore.Progress{}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	p = prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Filter: `{"grp": 1}`, Merge: restore.MergeMissing})
	go func() {
		_, err := p.Execute(cctx, use(t, c), restore.Options{Progress: prog, BatchBytes: 1, Log: testLogger(t)})
		done <- err
	}()
	waitFor(t, time.Minute, "the staging's load", func() bool {
		select {
		case err := <-done:
			t.Fatalf("the restore ended (%v) before its load was seen", err)
		default:
		}
		return prog.Phase() == "load" && len(stagingLeft(t, srv)) > 1
	})
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "nothing was written to the target") {
		t.Fatalf("interrupted restore: %v; want it cancelled, saying nothing was written", err)
	}
	if left := stagingLeft(t, srv); len(left) != 1 || left[0] != young {
		t.Errorf("staging databases after an interrupted restore: %v; want only %s", left, young)
	}
	if after := dump(t, c, db); after != before {
		t.Errorf("the target changed:\n%s\nwas\n%s", after, before)
	}
}

// base36 is n in base 36, 7 digits, as staging names carry their start.
func base36(n int64) string {
	s := strconv.FormatInt(n, 36)
	return strings.Repeat("0", 7-len(s)) + s
}

// With --merge the target check still refuses what merging cannot handle
// (here a capped collection where the backup's is not; a view; a
// collation, time series or clustering difference alike) and lets through
// what it can: documents, and indexes the backup lacks (left alone).
func TestMergeCheck(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("mc")
	r := peopleRepo(t, db)
	req := restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Merge: restore.MergeMissing}

	_, err := c.Database(db).Collection("people").InsertOne(ctx, person(500, "live"))
	must(t, err)
	_, err = c.Database(db).Collection("people").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "name", Value: 1}}})
	must(t, err)
	if f := check(t, prepare(t, r, req), c); len(f) != 0 {
		t.Errorf("merge into a collection holding documents and an extra index: %v; want nothing in the way", f)
	}
	plain := req
	plain.Merge = restore.MergeNone
	if f := check(t, prepare(t, r, plain), c); len(f) != 1 || !strings.Contains(f[0].String(), "holds documents") {
		t.Errorf("the same without --merge: %v; want it in the way", f)
	}

	dropDBs(t, c, db)
	must(t, c.Database(db).RunCommand(ctx, bson.D{{Key: "create", Value: "people"}, {Key: "capped", Value: true}, {Key: "size", Value: 1 << 20}}).Err())
	f := check(t, prepare(t, r, req), c)
	if len(f) != 1 || !strings.Contains(f[0].String(), "is capped") {
		t.Fatalf("merge into a capped collection: %v; want it in the way", f)
	}
	p := prepare(t, r, req)
	_, err = p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), "a merge writes only into collections whose capped") {
		t.Fatalf("merge into a capped collection: %v; want it refused with what a merge needs", err)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases left after a refusal: %v", left)
	}
}

// A filter the target's server refuses (an unknown operator: well-formed
// JSON, so only the server can tell) is refused by the check on MongoDB,
// in a dry run as in a restore, before anything is staged; on any server
// the restore and the undo refuse it before their first write and leave
// no staging.
func TestBadFilterRefusedBeforeStaging(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("bf")
	r := peopleRepo(t, db)
	live(t, r, c, db)
	before := byID(t, c, db, "people")
	const bad = `{"grp": {"$bogus": 3}}`
	p := prepare(t, r, restore.Request{To: restore.When{TS: rt.EntryTS(0)}, Target: "t", Filter: bad, Merge: restore.MergeMissing})
	_, err := restore.Check(ctx, c, p.Plan)
	var inv *restore.InvalidError
	switch {
	case srv.FerretDB():
		// FerretDB parses a query's operators only against documents: a
		// find on a missing collection takes {"$bogus": ...} (measured),
		// so the check cannot tell; the restore still refuses the filter
		// before its first write (below). MongoDB parses it first.
		if err != nil {
			t.Fatalf("Check with %s on FerretDB: %v; the probe was expected to pass there", bad, err)
		}
	case !errors.As(err, &inv) || inv.Field != "filter" || !strings.Contains(err.Error(), "$bogus"):
		t.Fatalf("Check with %s: %v; want the filter refused, naming the operator", bad, err)
	}
	_, err = p.Execute(ctx, use(t, c), restore.Options{Log: testLogger(t)})
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "$bogus") || !strings.Contains(err.Error(), "nothing was written") {
		t.Fatalf("restore with %s: %v; want the filter refused, nothing written", bad, err)
	}
	sameDocs(t, "after the refused restore", byID(t, c, db, "people"), before)
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases after a refused filter: %v", left)
	}
	_, err = undo(t, r, c, restore.UndoRequest{From: at2(rt.EntryTS(-1)), To: restore.When{Latest: true}, Include: []string{db}, Filter: bad})
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), "$bogus") {
		t.Fatalf("undo with %s: %v; want the filter refused", bad, err)
	}
	if left := stagingLeft(t, srv); len(left) > 0 {
		t.Errorf("staging databases after a refused undo filter: %v", left)
	}
}
