package browse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

func diff(d bson.D) bson.D { return bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: d}} }

// lifeOfUser is a repository in which app.users {_id: 1} is updated (a
// $v:2 diff), replaced, deleted, inserted again, updated inside a
// transaction, left alone while another document changes, its collection
// renamed, updated there, and dropped.
func lifeOfUser(t testing.TB) *written {
	w := newWritten(t, "mongodb", map[string][]bson.D{"app.users": {
		{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}, {Key: "n", Value: 1}},
		{{Key: "_id", Value: 2}, {Key: "name", Value: "other"}},
	}})
	w.segment(t,
		at(50, 1, rt.Update("app.users", 1, diff(bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: 2}}}}))),
		at(51, 1, rt.Update("app.users", 1, bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "b"}})),
		at(52, 1, rt.Delete("app.users", 1)))
	w.segment(t,
		at(53, 1, rt.Insert("app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "c"}})),
		at(54, 1, applyOps(3, rt.Update("app.users", 1, diff(bson.D{{Key: "i", Value: bson.D{{Key: "x", Value: true}}}})),
			rt.Insert("app.users", bson.D{{Key: "_id", Value: 3}}))),
		at(55, 1, rt.Update("app.users", 2, diff(bson.D{{Key: "u", Value: bson.D{{Key: "name", Value: "still other"}}}}))),
		at(56, 1, command("app", bson.D{{Key: "renameCollection", Value: "app.users"}, {Key: "to", Value: "app.people"}, {Key: "stayTemp", Value: false}})),
		at(57, 1, rt.Update("app.people", 1, diff(bson.D{{Key: "u", Value: bson.D{{Key: "name", Value: "d"}}}}))),
		at(58, 1, command("app", bson.D{{Key: "drop", Value: "people"}})))
	return w
}

type wantVersion struct {
	sec      uint32 // 0: the first version
	kind, ns string
	doc      bson.D // nil: deleted
}

func userVersions() []wantVersion {
	return []wantVersion{
		{0, "", "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}, {Key: "n", Value: 1}}},
		{50, repo.OpUpdate, "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}, {Key: "n", Value: 2}}},
		{51, repo.OpUpdate, "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "b"}}},
		{52, repo.OpDelete, "app.users", nil},
		{53, repo.OpInsert, "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "c"}}},
		{54, repo.OpUpdate, "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "c"}, {Key: "x", Value: true}}},
		{56, repo.OpCommand, "app.people", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "c"}, {Key: "x", Value: true}}},
		{57, repo.OpUpdate, "app.people", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "d"}, {Key: "x", Value: true}}},
		{58, repo.OpCommand, "app.people", nil},
	}
}

func checkVersions(t *testing.T, h browse.DocHistory, want []wantVersion, startAt uint32) {
	t.Helper()
	var got, exp []string
	for _, v := range h.Versions {
		sec := v.TS.T - t0
		if v.Kind == "" {
			sec = 0
		}
		got = append(got, fmt.Sprintf("%d %s %s %s", sec, v.Kind, v.NS, browse.DocJSON(v.Doc)))
	}
	for _, v := range want {
		var doc []byte
		if v.doc != nil {
			doc = marshal(t, v.doc)
		}
		exp = append(exp, fmt.Sprintf("%d %s %s %s", v.sec, v.kind, v.ns, browse.DocJSON(doc)))
	}
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("versions:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(exp, "\n"))
	}
	if h.Versions[0].TS.T < t0+startAt-1 || h.Versions[0].TS.T > t0+startAt {
		t.Fatalf("the first version is at %s, want the start %d", h.Versions[0].TS, startAt)
	}
}

// TestHistoryFollowsTheDocument: every version of one document, from the
// snapshot through updates, a replacement, delete and re-insert, a
// transaction, a rename of its collection and a drop; the other
// documents' writes make no version. The versions are byte for byte what
// the translator leaves.
func TestHistoryFollowsTheDocument(t *testing.T) {
	w := lifeOfUser(t)
	id, _ := browse.ParseID("1")
	h, err := browse.History(context.Background(), w.r, browse.HistoryQuery{NS: "app.users", ID: id})
	must(t, err)
	checkVersions(t, h, userVersions(), 0)
	if h.Versions[5].In != repo.InTransaction || h.Snapshot != w.snap.ID || h.Entries != 11 {
		t.Fatalf("in %q, snapshot %s, %d entries read", h.Versions[5].In, h.Snapshot, h.Entries)
	}

	// From the start of second 53: the first version is the document
	// just before it (deleted), then the re-insert and what follows.
	h, err = browse.History(context.Background(), w.r, browse.HistoryQuery{NS: "app.users", ID: id, From: when(t, "from", clock(53)), To: when(t, "to", clock(56))})
	must(t, err)
	want := append([]wantVersion{{0, "", "app.users", nil}}, userVersions()[4:7]...)
	checkVersions(t, h, want, 53)
}

// TestHistoryFlavor: FerretDB logs every update as a $set of the whole new
// document; the timeline's recorded flavor makes it a replacement, so a
// field the update removed is gone, as the server has it. Recorded as
// MongoDB, the same entry is a $set that keeps the field.
func TestHistoryFlavor(t *testing.T) {
	for _, c := range []struct {
		flavor string
		want   bson.D
	}{
		{"ferretdb", bson.D{{Key: "_id", Value: 7}, {Key: "a", Value: 5}}},
		{"mongodb", bson.D{{Key: "_id", Value: 7}, {Key: "a", Value: 5}, {Key: "b", Value: 2}}},
	} {
		w := newWritten(t, c.flavor, map[string][]bson.D{"db1.c": {{{Key: "_id", Value: 7}, {Key: "a", Value: 1}, {Key: "b", Value: 2}}}})
		w.segment(t, at(5, 1, rt.Update("db1.c", 7, bson.D{{Key: "$v", Value: 1}, {Key: "$set", Value: bson.D{{Key: "_id", Value: 7}, {Key: "a", Value: 5}}}})))
		id, _ := browse.ParseID("7")
		h, err := browse.History(context.Background(), w.r, browse.HistoryQuery{NS: "db1.c", ID: id})
		must(t, err)
		if len(h.Versions) != 2 || !bytes.Equal(h.Versions[1].Doc, marshal(t, c.want)) || string(h.Flavor) != c.flavor {
			t.Fatalf("flavor %s: versions %+v, want the update to leave %v", c.flavor, h.Versions, c.want)
		}
	}
}

// TestHistoryBadInput: --ns and --id are required, --ns is one collection,
// an unknown namespace and a range outside the repository say so.
func TestHistoryBadInput(t *testing.T) {
	id, _ := browse.ParseID("1")
	for _, c := range []struct {
		q     browse.HistoryQuery
		field string
	}{
		{browse.HistoryQuery{ID: id}, "ns"},
		{browse.HistoryQuery{NS: "app.users"}, "id"},
		{browse.HistoryQuery{NS: "app", ID: id}, "ns"},
		{browse.HistoryQuery{NS: "app.*", ID: id}, "ns"},
		{browse.HistoryQuery{NS: "app.users", ID: id, From: when(t, "from", clock(50)), To: when(t, "to", clock(40))}, "from"},
	} {
		err := c.q.Validate()
		var inv *restore.InvalidError
		if !errors.As(err, &inv) || inv.Field != c.field {
			t.Errorf("%+v: %v, want an error on %s", c.q, err, c.field)
		}
	}
	w := lifeOfUser(t)
	ctx := context.Background()
	_, err := browse.History(ctx, w.r, browse.HistoryQuery{NS: "app.nope", ID: id})
	var inv *restore.InvalidError
	if !errors.As(err, &inv) || inv.Field != "ns" || !strings.Contains(err.Error(), "app.nope is neither") {
		t.Fatalf("an unknown namespace: %v", err)
	}
	_, err = browse.History(ctx, w.r, browse.HistoryQuery{NS: "app.users", ID: id, From: when(t, "from", "2026-11-19T09:00:00Z")})
	if !errors.Is(err, restore.ErrOutsideWindows) {
		t.Fatalf("a start before the first snapshot: %v", err)
	}
	// A document that never existed: only the first version, absent.
	none, _ := browse.ParseID(`"nobody"`)
	h, err := browse.History(ctx, w.r, browse.HistoryQuery{NS: "app.users", ID: none})
	must(t, err)
	if len(h.Versions) != 1 || h.Versions[0].Doc != nil {
		t.Fatalf("a document that never existed: %+v", h.Versions)
	}
}

// TestHistoryFollowsAnOut: an aggregation's $out writes a temporary
// collection and renames it over the tracked one (dropTarget): the
// document's version is the one in the collection that replaced it.
func TestHistoryFollowsAnOut(t *testing.T) {
	w := newWritten(t, "mongodb", map[string][]bson.D{"app.users": {{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}}}})
	uuid := bson.Binary{Subtype: 4, Data: bytes.Repeat([]byte{7}, 16)}
	w.segment(t,
		at(1, 1, command("app", bson.D{{Key: "create", Value: "tmp.agg_out.1"}, {Key: "temp", Value: true}})),
		at(1, 2, rt.Insert("app.tmp.agg_out.1", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "agg"}})),
		at(1, 3, rt.Insert("app.tmp.agg_out.1", bson.D{{Key: "_id", Value: 2}, {Key: "name", Value: "other"}})),
		at(2, 1, command("app", bson.D{{Key: "renameCollection", Value: "app.tmp.agg_out.1"}, {Key: "to", Value: "app.users"},
			{Key: "stayTemp", Value: false}, {Key: "dropTarget", Value: uuid}})))
	id, _ := browse.ParseID("1")
	h, err := browse.History(context.Background(), w.r, browse.HistoryQuery{NS: "app.users", ID: id})
	must(t, err)
	checkVersions(t, h, []wantVersion{
		{0, "", "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "a"}}},
		{2, repo.OpCommand, "app.users", bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "agg"}}},
	}, 0)
}
