package browse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// listed runs List and describes each operation as "second op ns id in".
func listed(t *testing.T, r *repo.Repository, q browse.Query) ([]string, browse.ListStats) {
	t.Helper()
	var out []string
	st, err := browse.List(context.Background(), r, q, func(o browse.Op) error {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%d %s %s %s %s", o.TS.T-t0, o.Kind, o.NS, browse.ValueJSON(o.ID), o.In)))
		return nil
	})
	must(t, err)
	return out, st
}

// TestListFilters: the operations of a range, filtered by namespace, kind
// and _id; operations inside applyOps listed one by one with the enclosing
// entry's ts and where they were logged; commands listed for every
// collection of a selected database; segments whose index shows nothing
// selected are not read.
func TestListFilters(t *testing.T) {
	w := badMorning(t)
	r, store := w.counted(t)
	q := morningQuery(t)
	q.NS = []string{"shop.stock"}
	got, st := listed(t, r, q)
	want := []string{
		`11 update shop.stock "apples"`,
		`21 insert shop.stock "pears"`,
		`30 update shop.stock "apples" transaction`,
		`31 command shop.tmp null`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("--ns shop.stock:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if gets := store.reset(); st.Skipped != 2 || gets["oplog"] != len(w.segs)-2 {
		t.Fatalf("skipped %d segments, read %v; want the deleteMany's and the first (no-ops) skipped by their index", st.Skipped, gets)
	}

	q = morningQuery(t)
	q.NS, q.Ops = []string{"shop"}, []string{repo.OpDelete}
	q.ID, _ = browse.ParseID(`{"$numberDouble": "4321.0"}`)
	if got, _ := listed(t, r, q); len(got) != 1 || got[0] != `20 delete shop.orders {"$numberLong":"4321"} applyOps` {
		t.Fatalf("--id 4321.0 --op delete: %q", got)
	}
	q.ID = bson.RawValue{}
	if got, _ := listed(t, r, q); len(got) != 5000 {
		t.Fatalf("the deleteMany: %d deletes listed, want 5000", len(got))
	}

	// Without --ns, the server's own namespaces are left out.
	got, _ = listed(t, r, morningQuery(t))
	for _, l := range got {
		if strings.Contains(l, "local.") || strings.Contains(l, "config.") {
			t.Fatalf("listed %q without asking for it", l)
		}
	}
	if len(got) != 5008 {
		t.Fatalf("%d operations, want 5,008 (the no-ops are not listed)", len(got))
	}
}

// TestOpJSON: the JSON line of an operation: ts as {t, i}, its second as
// RFC 3339, _id and change as canonical Extended JSON, where it was
// logged, and the raw entry when asked for.
func TestOpJSON(t *testing.T) {
	w := badMorning(t)
	q := morningQuery(t)
	q.NS, q.Ops = []string{"shop.orders"}, []string{repo.OpInsert}
	q.ID, _ = browse.ParseID("200")
	var lines []string
	_, err := browse.List(context.Background(), w.r, q, func(o browse.Op) error {
		b, err := json.Marshal(o.JSON(true))
		lines = append(lines, string(b))
		return err
	})
	must(t, err)
	want := fmt.Sprintf(`{"ts":{"t":%d,"i":1},"time":"%s","op":"insert","ns":"shop.orders","_id":{"$numberLong":"200"},"change":{"_id":{"$numberLong":"200"}},"in":"transaction","raw":{"op":"i","ns":"shop.orders","o":{"_id":{"$numberLong":"200"}}}}`,
		t0+30, timeOf(30))
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("JSON lines:\n%s\nwant\n%s", strings.Join(lines, "\n"), want)
	}
}

// TestListAcrossOverlappingTimelines: a block prune copied to a timeline of
// its own, still beside its original (a prune stopped between the copy and
// the delete), is listed once.
func TestListAcrossOverlappingTimelines(t *testing.T) {
	w := badMorning(t)
	ctx := context.Background()
	es, err := w.r.ReadSegment(ctx, w.segs[2])
	must(t, err)
	_, err = w.r.WriteSegmentAfter(ctx, "rs0", w.tl+".0badcafe", w.segs[1].Last, es)
	must(t, err)
	got, _ := listed(t, w.r, morningQuery(t))
	if len(got) != 5008 {
		t.Fatalf("%d operations listed, want 5,008, each once", len(got))
	}
	sum, err := browse.Summarize(ctx, w.r, morningQuery(t))
	must(t, err)
	if sum.Operations != 5008 {
		t.Fatalf("summary counts %d operations, want 5,008", sum.Operations)
	}
}

// TestBadQueries: input errors name the field before anything is read;
// a range the repository holds nothing of, or a shard it does not hold,
// says what it holds.
func TestBadQueries(t *testing.T) {
	for _, c := range []struct {
		q     browse.Query
		field string
	}{
		{browse.Query{NS: []string{"shop.[a"}}, "ns"},
		{browse.Query{NS: []string{""}}, "ns"},
		{browse.Query{Ops: []string{"upsert"}}, "op"},
		{browse.Query{From: when(t, "from", clock(50)), To: when(t, "to", clock(10))}, "from"},
	} {
		err := c.q.Validate()
		var inv *restore.InvalidError
		if !errors.As(err, &inv) || inv.Field != c.field {
			t.Errorf("%+v: %v, want an error on %s", c.q, err, c.field)
		}
	}
	for _, s := range []string{"abc", "", `{"$oid": "zz"}`, `1, "x": 2`} {
		if _, err := browse.ParseID(s); err == nil || !strings.Contains(err.Error(), "--id") {
			t.Errorf("--id %q: %v", s, err)
		}
	}
	if _, err := browse.ParseWhen("from", "09:30"); err == nil || !strings.HasPrefix(err.Error(), "--from ") {
		t.Errorf("--from 09:30: %v", err)
	}

	w := badMorning(t)
	ctx := context.Background()
	q := browse.Query{From: when(t, "from", "2026-11-19T09:00:00Z"), To: when(t, "to", "2026-11-19T10:00:00Z")}
	_, err := browse.Summarize(ctx, w.r, q)
	if !errors.Is(err, browse.ErrOutside) || !strings.Contains(err.Error(), timeOf(0)) {
		t.Fatalf("a range before the oplog: %v", err)
	}
	q = browse.Query{From: when(t, "from", clock(3600))}
	if _, err := browse.List(ctx, w.r, q, func(browse.Op) error { return nil }); !errors.Is(err, browse.ErrOutside) {
		t.Fatalf("a range after the newest entry: %v", err)
	}
	q = browse.Query{Shard: "rs9"}
	var inv *restore.InvalidError
	if _, err := browse.Summarize(ctx, w.r, q); !errors.As(err, &inv) || !strings.Contains(err.Error(), "it holds rs0") {
		t.Fatalf("an unknown shard: %v", err)
	}
	// A second shard: the query must name one.
	_, err = w.r.WriteSegment(ctx, "rs1", "tl-1", []bson.Raw{marshal(t, bson.D{{Key: "ts", Value: bson.Timestamp{T: t0, I: 1}}, {Key: "op", Value: "n"}})})
	must(t, err)
	must(t, w.r.WriteTimeline(ctx, repo.TimelineInfo{Shard: "rs1", ID: "tl-1"}))
	if _, err := browse.Summarize(ctx, w.r, browse.Query{}); !errors.As(err, &inv) || inv.Field != "shard" || !strings.Contains(err.Error(), "rs0, rs1") {
		t.Fatalf("two shards: %v", err)
	}
	if sum, err := browse.Summarize(ctx, w.r, browse.Query{Shard: "rs0"}); err != nil || sum.Operations != 5008 {
		t.Fatalf("--shard rs0 (the last hour): %d operations, %v", sum.Operations, err)
	}
}

// TestDefaultRange: without --from, the range is the hour before --to.
func TestDefaultRange(t *testing.T) {
	w := badMorning(t)
	sum, err := browse.Summarize(context.Background(), w.r, browse.Query{})
	must(t, err)
	if sum.To != (optime.Timestamp{T: t0 + 41, I: 1}) || sum.From != (optime.Timestamp{T: t0 + 41 - 3600}) {
		t.Fatalf("default range %s .. %s", sum.From, sum.To)
	}
}

// rewind's own staging databases (a filtered restore's or an undo's, on
// the live deployment) are left out unless a pattern names them: they
// would bury the application's operations.
func TestStagingLeftOut(t *testing.T) {
	stage := restore.StagingPrefix + "0tpa88vogx_shop"
	r := rt.New(t, rt.Spec{Entries: []bson.D{
		rt.Insert("shop.orders", bson.D{{Key: "_id", Value: 1}}),
		rt.Insert(stage+".orders", bson.D{{Key: "_id", Value: 1}}),
		rt.Insert(stage+".orders", bson.D{{Key: "_id", Value: 2}}),
	}})
	q := browse.Query{From: restore.When{TS: rt.EntryTS(-1)}, To: restore.When{Latest: true}}
	got, _ := listed(t, r.Repository, q)
	if len(got) != 1 || !strings.Contains(got[0], "shop.orders") {
		t.Fatalf("without --ns: %q; want shop.orders alone", got)
	}
	q.NS = []string{restore.StagingPrefix + "*"}
	if got, _ := listed(t, r.Repository, q); len(got) != 2 {
		t.Fatalf("--ns %s*: %q; want the staging's 2 inserts", restore.StagingPrefix, got)
	}
}
