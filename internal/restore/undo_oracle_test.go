package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// badScenario is a captured workload with a bad deleteMany and a bad
// updateMany in it, and full-document marks of the state just before the
// first (from), just after the second (to) and at the end.
type badScenario struct {
	srv             *testserver.Server
	repo            *repo.Repository
	items           string   // db.items: the collection with a grp field
	scope           []string // the namespaces undone: items' database and one workload database
	from, to, end   oracle.Mark
	deleted, voided int // documents the bad deleteMany and updateMany hit
}

// newBadScenario runs it: 120 items (grp = _id % 5) and a snapshot before
// the workload; a seeded workload in two databases with capture on; at batch 6 a mark,
// then deleteMany {grp: 3}; at batch 9 updateMany {grp: 1} (a new field, a
// bigger v), then a mark; at batch 12 the application writes again: two
// deleted items re-inserted otherwise, two voided ones updated again, an
// untouched one updated, a new one inserted. The workload goes on writing
// its own documents, before, inside and after the bad range.
func newBadScenario(t *testing.T, seed uint64) *badScenario {
	t.Helper()
	ctx := context.Background()
	sc := &badScenario{srv: testserver.Start(t)}
	c := sc.srv.Client()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	sc.repo, err = repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(t, err)

	db := sc.srv.DB("shop")
	sc.items = db + ".items"
	items := c.Database(db).Collection("items")
	var docs []any
	for i := range 120 {
		docs = append(docs, bson.D{{Key: "_id", Value: int64(i)}, {Key: "grp", Value: int32(i % 5)}, {Key: "v", Value: int32(i)},
			{Key: "tags", Value: bson.A{"a", fmt.Sprint(i)}}})
	}
	_, err = items.InsertMany(ctx, docs)
	must(t, err)
	ag := startAgent(t, sc.srv, url)
	waitAgent(t, ag)
	src, err := source.Connect(ctx, sc.srv.URI())
	must(t, err)
	_, err = snapshot.Take(ctx, src, sc.repo, snapshot.Options{Parallel: 2, Capture: snapshot.CaptureByAgent, Log: testLogger(t)})
	cctx, cancel := cleanupContext()
	src.Close(cctx)
	cancel()
	must(t, err)

	cfg := sc.srv.Workload(seed)
	cfg.Databases, cfg.Collections, cfg.BatchSize, cfg.LargeEvery, cfg.Ops = 2, 3, 10, 0, 250
	sc.scope = []string{db, workload.Databases(cfg)[0]}
	rec := &oracle.Recorder{Client: c, Filter: oracle.Filter{Include: sc.scope}, KeepDocs: true}
	mark := func() oracle.Mark {
		m, err := rec.Record(ctx, workload.Batch{})
		must(t, err)
		return m
	}
	_, err = workload.Run(ctx, c, cfg, func(ctx context.Context, b workload.Batch) error {
		var err error
		switch b.N {
		case 6:
			sc.from = mark()
			var r *mongo.DeleteResult
			r, err = items.DeleteMany(ctx, bson.D{{Key: "grp", Value: 3}})
			sc.deleted = int(r.DeletedCount)
		case 9:
			var r *mongo.UpdateResult
			r, err = items.UpdateMany(ctx, bson.D{{Key: "grp", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "status", Value: "void"}}}, {Key: "$inc", Value: bson.D{{Key: "v", Value: 1000}}}})
			sc.voided = int(r.ModifiedCount)
			sc.to = mark()
		case 12:
			err = appWrites(ctx, items)
		}
		return err
	})
	must(t, err)
	sc.end = mark()
	waitDurable(t, ag, sc.end.TS, time.Minute)
	t.Logf("scenario: %d deleted, %d voided; range %s..%s; end %s", sc.deleted, sc.voided, sc.from.TS, sc.to.TS, sc.end.TS)
	return sc
}

// appWrites are the application's writes after the bad range.
func appWrites(ctx context.Context, items *mongo.Collection) error {
	if _, err := items.InsertMany(ctx, []any{
		bson.D{{Key: "_id", Value: int64(3)}, {Key: "grp", Value: int32(3)}, {Key: "v", Value: "re-entered by hand"}},
		bson.D{{Key: "_id", Value: int64(8)}, {Key: "grp", Value: int32(3)}},
		bson.D{{Key: "_id", Value: int64(500)}, {Key: "grp", Value: int32(3)}, {Key: "v", Value: "new since"}},
	}); err != nil {
		return err
	}
	for _, u := range []struct {
		id  int64
		set bson.D
	}{{1, bson.D{{Key: "status", Value: "checked"}}}, {6, bson.D{{Key: "note", Value: "x"}}}, {10, bson.D{{Key: "v", Value: -1}}}} {
		if _, err := items.UpdateOne(ctx, bson.D{{Key: "_id", Value: u.id}}, bson.D{{Key: "$set", Value: u.set}}); err != nil {
			return err
		}
	}
	return nil
}

// expectation is what an undo of (from, to] should leave, computed from
// the marks' documents only: per namespace, every document by _id; and the
// conflicts.
type expectation struct {
	docs      map[string]map[string]bson.Raw // ns -> _id key -> document
	conflicts map[string][]string            // ns -> _ids (extended JSON), sorted
	restored  int64                          // documents put back (not conflicts)
}

// expect applies the undo's rule to the marks: a document whose versions
// at from and to differ is put back to its version at from when the end
// state holds its version at to (or its version at from already), and is
// a conflict otherwise: left as it is, or with force put back too.
func (sc *badScenario) expect(force bool) expectation {
	e := expectation{docs: map[string]map[string]bson.Raw{}, conflicts: map[string][]string{}}
	for _, ns := range sc.end.State.Names() {
		f, to, c := docsOf(sc.from, ns), docsOf(sc.to, ns), docsOf(sc.end, ns)
		out := map[string]bson.Raw{}
		for k, d := range c {
			out[k] = d
		}
		for _, k := range union(f, to, c) {
			switch {
			case bytes.Equal(f[k], to[k]) || bytes.Equal(c[k], f[k]):
				continue
			case !bytes.Equal(c[k], to[k]):
				id := firstNonNil(f[k], to[k], c[k]).Lookup("_id").String()
				e.conflicts[ns] = append(e.conflicts[ns], id)
				if !force {
					continue
				}
			default:
				e.restored++
			}
			if f[k] == nil {
				delete(out, k)
			} else {
				out[k] = f[k]
			}
		}
		sort.Strings(e.conflicts[ns])
		e.docs[ns] = out
	}
	return e
}

func docsOf(m oracle.Mark, ns string) map[string]bson.Raw {
	out := map[string]bson.Raw{}
	if c, ok := m.State[ns]; ok {
		for _, d := range c.Documents() {
			id := d.Lookup("_id")
			out[string([]byte{byte(id.Type)})+string(id.Value)] = d
		}
	}
	return out
}

func union(ms ...map[string]bson.Raw) []string {
	set := map[string]bool{}
	for _, m := range ms {
		for k := range m {
			set[k] = true
		}
	}
	var out []string
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func firstNonNil(ds ...bson.Raw) bson.Raw {
	for _, d := range ds {
		if d != nil {
			return d
		}
	}
	return nil
}

// compareTarget checks every namespace of the scope byte for byte.
func (sc *badScenario) compareTarget(t *testing.T, what string, e expectation) {
	t.Helper()
	st, err := oracle.SnapshotWith(context.Background(), sc.srv.Client(), oracle.Filter{Include: sc.scope}, oracle.SnapshotOptions{KeepDocs: true})
	must(t, err)
	for ns, want := range e.docs {
		got := docsOf(oracle.Mark{State: st}, ns)
		for _, k := range union(got, want) {
			if !bytes.Equal(got[k], want[k]) {
				d := firstNonNil(want[k], got[k])
				t.Fatalf("%s: %s _id %s is\n  %s\nwant\n  %s", what, ns, d.Lookup("_id"), orNone(got[k]), orNone(want[k]))
			}
		}
	}
}

func orNone(d bson.Raw) string {
	if d == nil {
		return "absent"
	}
	return d.String()
}

// sameConflicts checks the conflicts an undo reported against the marks':
// per namespace their number, and the _ids it lists (the first
// UndoSample) are among them.
func sameConflicts(t *testing.T, what string, rep restore.UndoReport, want map[string][]string) {
	t.Helper()
	total := 0
	for _, ids := range want {
		total += len(ids)
	}
	if got := rep.ConflictsLeft + rep.ConflictsForced; got != int64(total) {
		t.Fatalf("%s: %d conflicts, want %d: %v", what, got, total, want)
	}
	for _, n := range rep.Namespaces {
		ns := n.Namespace.String()
		if got := n.ConflictsLeft + n.ConflictsForced; got != int64(len(want[ns])) || len(n.Conflicts) != min(len(want[ns]), restore.UndoSample) {
			t.Fatalf("%s: %s has %d conflicts (%d listed), want %v", what, ns, got, len(n.Conflicts), want[ns])
		}
		for _, id := range n.Conflicts {
			if !slices.Contains(want[ns], id.String()) {
				t.Fatalf("%s: %s lists conflict %s, want only %v", what, ns, id, want[ns])
			}
		}
	}
}

// The oracle scenario: a workload runs with capture on; at
// recorded moments come a bad deleteMany (every item with grp 3) and a bad
// updateMany; the workload goes on, and the application writes a few of
// the damaged items again. `undo` over the bad range, in the items'
// database and a workload database, gives exactly the state the marks
// say: every untouched damaged document back as it was, every later write
// kept, the documents written again reported as conflicts and left alone.
// --force then puts those back too. A dry run first says the same and
// changes nothing.
func TestUndoOracle(t *testing.T) {
	seed := uint64(envInt(t, "REWIND_ORACLE_SEED", time.Now().UnixNano()%1e9))
	t.Logf("seed %d (REWIND_ORACLE_SEED replays it)", seed)
	sc := newBadScenario(t, seed)
	if sc.deleted != 24 || sc.voided != 24 {
		t.Fatalf("the bad writes hit %d and %d items, want 24 and 24", sc.deleted, sc.voided)
	}
	want, forced := sc.expect(false), sc.expect(true)
	if len(want.conflicts[sc.items]) != 4 {
		t.Fatalf("the scenario has conflicts %v in %s, want the 4 items written again", want.conflicts, sc.items)
	}
	ctx := context.Background()
	include := append([]string(nil), sc.scope...)
	req := restore.UndoRequest{From: at(sc.from.TS), To: at(sc.to.TS), Include: include, Target: sc.srv.URI(), DryRun: true}
	run := func(req restore.UndoRequest) restore.UndoReport {
		t.Helper()
		must(t, req.Validate())
		u, err := restore.PrepareUndo(ctx, sc.repo, req)
		must(t, err)
		defer u.Release()
		rep, err := u.Execute(ctx, use(t, sc.srv.Client()), restore.Options{Log: testLogger(t)})
		must(t, err)
		return rep
	}

	rep := run(req)
	sc.compareTarget(t, "after the dry run", sc.expect(false).unchanged(sc))
	sameConflicts(t, "dry run", rep, want.conflicts)
	if rep.Written() != want.restored {
		t.Fatalf("dry run: %d to write; want %d", rep.Written(), want.restored)
	}

	req.DryRun = false
	rep = run(req)
	sc.compareTarget(t, "after the undo", want)
	sameConflicts(t, "undo", rep, want.conflicts)
	if rep.Written() != want.restored || rep.ConflictsForced != 0 {
		t.Fatalf("undo: %+v; want %d written, no conflict forced", rep.UndoCounts, want.restored)
	}
	t.Logf("undo: %+v in %s", rep.UndoCounts, rep.Duration.Round(time.Millisecond))

	req.Force = true
	rep = run(req)
	sc.compareTarget(t, "after undo --force", forced)
	if rep.ConflictsForced != rep.Changed-rep.Unchanged || rep.ConflictsLeft != 0 {
		t.Fatalf("undo --force: %+v; want every conflict forced, nothing else left to write", rep.UndoCounts)
	}
	if left := stagingLeft(t, sc.srv); len(left) > 0 {
		t.Errorf("staging databases left: %v", left)
	}
}

// unchanged is the end state itself: what a dry run must leave.
func (e expectation) unchanged(sc *badScenario) expectation {
	out := expectation{docs: map[string]map[string]bson.Raw{}}
	for ns := range e.docs {
		out.docs[ns] = docsOf(sc.end, ns)
	}
	return out
}

// The "done when": on the captured scenario, restore --filter
// '{"grp": 3}' --merge missing --to <before the bad delete> into the live
// collection restores exactly the deleted documents (but the two written
// again since, left alone) and nothing else. Run on a copy of the live
// state, so it does not change the scenario.
func TestUndoScenarioFilteredRestore(t *testing.T) {
	sc := newBadScenario(t, 7)
	ctx := context.Background()
	live := testserver.Start(t)
	p, err := restore.Prepare(ctx, sc.repo, restore.Request{To: restore.When{Latest: true}, Include: sc.scope[:1], Target: "t"})
	must(t, err)
	_, err = p.Execute(ctx, use(t, live.Client()), restore.Options{Log: testLogger(t)})
	p.Release()
	must(t, err)
	p, err = restore.Prepare(ctx, sc.repo, restore.Request{To: at(sc.from.TS), Include: []string{sc.items}, Target: "t", Filter: `{"grp": 3}`, Merge: restore.MergeMissing})
	must(t, err)
	rep, err := p.Execute(ctx, use(t, live.Client()), restore.Options{Log: testLogger(t)})
	p.Release()
	must(t, err)

	want := docsOf(sc.end, sc.items)
	from := docsOf(sc.from, sc.items)
	for k, d := range from {
		if _, held := want[k]; !held && d.Lookup("grp").Int32() == 3 {
			want[k] = d
		}
	}
	st, err := oracle.SnapshotWith(ctx, live.Client(), oracle.Filter{Include: []string{sc.items}}, oracle.SnapshotOptions{KeepDocs: true})
	must(t, err)
	got := docsOf(oracle.Mark{State: st}, sc.items)
	for _, k := range union(got, want) {
		if !bytes.Equal(got[k], want[k]) {
			t.Fatalf("after the filtered merge _id %x is %s, want %s", k, orNone(got[k]), orNone(want[k]))
		}
	}
	if rep.Merged != (restore.Merged{Inserted: int64(sc.deleted - 2), LeftAlone: 2}) {
		t.Errorf("report: %+v; want %d inserted, 2 left alone (written again since)", rep.Merged, sc.deleted-2)
	}
}
