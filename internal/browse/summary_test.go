package browse_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// badMorning is a repository whose oplog holds, at t0+20, a deleteMany of
// 5,000 documents logged as two batched applyOps entries (as MongoDB 6.0+
// logs one), around ordinary writes, a transaction, a drop and the
// server's own writes (local.*, config.*).
func badMorning(t testing.TB) *written {
	w := newWritten(t, "mongodb", map[string][]bson.D{"shop.orders": {{{Key: "_id", Value: int64(1)}}}})
	w.segment(t,
		at(10, 1, rt.Insert("shop.orders", bson.D{{Key: "_id", Value: int64(100)}})),
		at(10, 2, rt.Insert("shop.orders", bson.D{{Key: "_id", Value: int64(101)}})),
		at(11, 1, rt.Update("shop.stock", "apples", bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: 3}}}}}})))
	var first, second []bson.D
	for id := int64(1); id <= 5000; id++ {
		if id <= 3000 {
			first = append(first, rt.Delete("shop.orders", id))
		} else {
			second = append(second, rt.Delete("shop.orders", id))
		}
	}
	w.segment(t,
		at(20, 1, applyOps(0, first...)),
		at(20, 2, applyOps(0, second...)),
		at(21, 1, rt.Insert("shop.stock", bson.D{{Key: "_id", Value: "pears"}})))
	w.segment(t,
		at(30, 1, applyOps(7, rt.Insert("shop.orders", bson.D{{Key: "_id", Value: int64(200)}}),
			rt.Update("shop.stock", "apples", bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: 2}}}}}}))),
		at(31, 1, command("shop", bson.D{{Key: "drop", Value: "tmp"}})),
		at(32, 1, bson.D{{Key: "op", Value: "n"}, {Key: "ns", Value: ""}, {Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}}}))
	w.segment(t,
		at(40, 1, rt.Delete("local.oplog.rs", bson.NewObjectID())),
		at(40, 2, rt.Update("config.system.sessions", "s1", bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{}}})),
		at(41, 1, rt.Insert("shop.orders", bson.D{{Key: "_id", Value: int64(300)}})))
	return w
}

// morningRows is badMorning's summary over every user namespace.
var morningRows = []browse.Row{
	{t0 + 10, "shop.orders", repo.OpInsert, 2},
	{t0 + 11, "shop.stock", repo.OpUpdate, 1},
	{t0 + 20, "shop.orders", repo.OpDelete, 5000},
	{t0 + 21, "shop.stock", repo.OpInsert, 1},
	{t0 + 30, "shop.orders", repo.OpInsert, 1},
	{t0 + 30, "shop.stock", repo.OpUpdate, 1},
	{t0 + 31, "shop.tmp", repo.OpCommand, 1},
	{t0 + 41, "shop.orders", repo.OpInsert, 1},
}

func when(t testing.TB, field, s string) restore.When {
	t.Helper()
	w, err := browse.ParseWhen(field, s)
	must(t, err)
	return w
}

func clock(sec uint32) string { return timeOf(sec) }

// morningQuery is the whole morning: from t0's second to the latest entry.
func morningQuery(t testing.TB) browse.Query {
	return browse.Query{From: when(t, "from", clock(0)), To: when(t, "to", "latest")}
}

// TestSummaryReadsIndexesNotSegments: the summary of the range is counted
// from the segments' indexes alone (no segment is fetched), the bad
// deleteMany is one row of 5,000 deletes at its second, and the rows equal
// those counted from every entry. A missing index, or a corrupt one, makes
// only that segment be read, with the same answer.
func TestSummaryReadsIndexesNotSegments(t *testing.T) {
	ctx := context.Background()
	w := badMorning(t)
	r, store := w.counted(t)
	sum, err := browse.Summarize(ctx, r, morningQuery(t))
	must(t, err)
	gets := store.reset()
	if !slices.Equal(sum.Rows, morningRows) {
		t.Fatalf("rows %v\nwant %v", sum.Rows, morningRows)
	}
	if gets["oplog"] != 0 || gets["oplog-index"] != len(w.segs) || sum.Indexed != len(w.segs) || sum.ReadWhole != 0 {
		t.Fatalf("read %v (indexed %d, whole %d); want every one of the %d segments' indexes and no segment", gets, sum.Indexed, sum.ReadWhole, len(w.segs))
	}
	if base := countEntries(t, r, morningQuery(t)); !slices.Equal(base, morningRows) {
		t.Fatalf("counted from the entries: %v", base)
	}
	store.reset()

	// No index (an older rewind's segment), then a corrupt one.
	must(t, os.Remove(filepath.Join(w.dir, repo.IndexKey(w.segs[1].Key))))
	must(t, os.WriteFile(filepath.Join(w.dir, repo.IndexKey(w.segs[2].Key)), []byte("RWND not an index"), 0o644))
	sum, err = browse.Summarize(ctx, r, morningQuery(t))
	must(t, err)
	gets = store.reset()
	if !slices.Equal(sum.Rows, morningRows) {
		t.Fatalf("without two indexes: rows %v\nwant %v", sum.Rows, morningRows)
	}
	if gets["oplog"] != 2 || sum.ReadWhole != 2 || len(sum.Warnings) != 1 {
		t.Fatalf("without two indexes: read %v, whole %d, warnings %q; want the two segments read, one warning for the corrupt index", gets, sum.ReadWhole, sum.Warnings)
	}
}

// countEntries is the baseline: the same summary counted from every
// operation List returns.
func countEntries(t testing.TB, r *repo.Repository, q browse.Query) []browse.Row {
	t.Helper()
	counts := map[browse.Row]int64{}
	var order []browse.Row
	_, err := browse.List(context.Background(), r, q, func(o browse.Op) error {
		k := browse.Row{Second: o.TS.T, NS: o.NS, Kind: o.Kind}
		if counts[k] == 0 {
			order = append(order, k)
		}
		counts[k]++
		return nil
	})
	must(t, err)
	for i := range order {
		order[i].Count = counts[order[i]]
	}
	slices.SortFunc(order, func(a, b browse.Row) int {
		return cmp.Or(cmp.Compare(a.Second, b.Second), strings.Compare(a.NS, b.NS), strings.Compare(a.Kind, b.Kind))
	})
	return order
}

// TestSummaryCutsSecondsExactly: a bound given as SECONDS:INCREMENT cuts
// the deleteMany's second between its two entries; the rows of that second
// are counted from the entries, exactly.
func TestSummaryCutsSecondsExactly(t *testing.T) {
	ctx := context.Background()
	w := badMorning(t)
	for _, c := range []struct {
		from, to string
		want     int64
	}{
		{fmt.Sprintf("%d:2", t0+20), fmt.Sprintf("%d:1", t0+21), 2000},
		{clock(15), fmt.Sprintf("%d:1", t0+20), 3000},
		{clock(20), clock(20), 5000},
	} {
		sum, err := browse.Summarize(ctx, w.r, browse.Query{From: when(t, "from", c.from), To: when(t, "to", c.to), NS: []string{"shop.orders"}, Ops: []string{repo.OpDelete}})
		must(t, err)
		if len(sum.Rows) != 1 || sum.Rows[0].Count != c.want || sum.Rows[0].Second != t0+20 {
			t.Errorf("%s .. %s: rows %v, want %d deletes at t0+20", c.from, c.to, sum.Rows, c.want)
		}
	}
}

// TestSummaryFilters: --ns, --op and --id narrow the rows; the server's own
// namespaces appear only when a pattern names them; a pattern that
// matches nothing in the range is an error.
func TestSummaryFilters(t *testing.T) {
	ctx := context.Background()
	w := badMorning(t)
	q := morningQuery(t)
	q.NS, q.Ops = []string{"local.*", "shop.st*"}, []string{repo.OpUpdate, repo.OpDelete}
	sum, err := browse.Summarize(ctx, w.r, q)
	must(t, err)
	want := []browse.Row{{t0 + 11, "shop.stock", repo.OpUpdate, 1}, {t0 + 30, "shop.stock", repo.OpUpdate, 1}, {t0 + 40, "local.oplog.rs", repo.OpDelete, 1}}
	if !slices.Equal(sum.Rows, want) {
		t.Fatalf("rows %v\nwant %v", sum.Rows, want)
	}
	q = morningQuery(t)
	q.ID, err = browse.ParseID("4321") // an int32 names the int64 _id 4321
	must(t, err)
	sum, err = browse.Summarize(ctx, w.r, q)
	must(t, err)
	if want := []browse.Row{{t0 + 20, "shop.orders", repo.OpDelete, 1}}; !slices.Equal(sum.Rows, want) {
		t.Fatalf("--id 4321: rows %v, want %v", sum.Rows, want)
	}
	q = morningQuery(t)
	q.NS = []string{"shop.orders", "shop.nope"}
	_, err = browse.Summarize(ctx, w.r, q)
	var inv *restore.InvalidError
	if !errors.As(err, &inv) || inv.Field != "ns" || !contains(err.Error(), "shop.nope matches no namespace") || contains(err.Error(), "shop.orders,") {
		t.Fatalf("an unknown namespace: %v", err)
	}
}
