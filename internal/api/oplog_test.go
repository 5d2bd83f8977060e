package api_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/api"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// opLine is an operation as a user reads it off the answer.
func opLine(o map[string]any) string {
	ts := o["ts"].(map[string]any)
	id, _ := json.Marshal(o["_id"])
	line := fmt.Sprintf("%d:%d %s %s %s", int64(ts["t"].(float64)), int64(ts["i"].(float64)), o["op"], o["ns"], id)
	if in, ok := o["in"]; ok {
		line += " in " + in.(string)
	}
	return line
}

// compact is JSON without the envelope's indentation.
func compact(t *testing.T, b json.RawMessage) string {
	t.Helper()
	var out bytes.Buffer
	must(t, json.Compact(&out, b))
	return out.String()
}

// oplogPage reads one page of GET /api/v1/oplog.
func oplogPage(t *testing.T, c *client, q url.Values) (api.OplogPage, []string) {
	t.Helper()
	var raw struct {
		Operations []map[string]any `json:"operations"`
	}
	a := c.do("GET", "/api/v1/oplog?"+q.Encode(), token, "")
	if a.Status != 200 {
		t.Fatalf("GET /api/v1/oplog?%s: %d %s", q.Encode(), a.Status, a.raw)
	}
	var p api.OplogPage
	must(t, json.Unmarshal(a.Data, &p))
	must(t, json.Unmarshal(a.Data, &raw))
	var lines []string
	for _, o := range raw.Operations {
		lines = append(lines, opLine(o))
	}
	return p, lines
}

// The operation browser over the API lists what `rewind oplog --json`
// lists: each operation of the bad applyOps on its own at the entry's
// timestamp, selected by namespace, kind and _id; pages of limit
// operations chained by next list every operation once, a page boundary
// inside the applyOps included; the summary shows the bad delete as one
// row of 5 at its second.
func TestOplogOverAPI(t *testing.T) {
	r := opsRepo(t, "shop")
	c := repoAPI(t, r, false)
	e := func(i int) string { return rt.EntryTS(i).String() }
	ord := func(op string, i int, id int) string {
		ts := rt.EntryTS(i)
		return fmt.Sprintf("%d:%d %s shop.orders {\"$numberInt\":\"%d\"}", ts.T, ts.I, op, id)
	}
	var want []string
	want = append(want, ord("update", 0, 5))
	for _, id := range badDelete {
		want = append(want, ord("delete", 1, id)+" in applyOps")
	}
	want = append(want, ord("insert", 2, 100), fmt.Sprintf("%d:1 insert shop.other {\"$numberInt\":\"1\"} in applyOps", rt.EntryTS(3).T),
		fmt.Sprintf("%d:1 insert shop.other2 {\"$numberInt\":\"2\"} in applyOps", rt.EntryTS(3).T), ord("update", 4, 2), ord("insert", 5, 7))

	all := url.Values{"from": {iso(uint32(rt.T0.Unix()))}}
	p, got := oplogPage(t, c, all)
	if !slices.Equal(got, want) || p.Truncated || p.Next != nil || p.Shard != "rs0" || p.To == nil || p.To.T != rt.EntryTS(5).T {
		t.Fatalf("all operations:\n%s\nwant\n%s\n(truncated %v, next %v, shard %s, to %v)", strings.Join(got, "\n"), strings.Join(want, "\n"), p.Truncated, p.Next, p.Shard, p.To)
	}
	if ch := compact(t, p.Operations[0].Change); !strings.Contains(ch, `"note":"five v2"`) {
		t.Errorf("the update's change is %s, want the new document in canonical Extended JSON", ch)
	}

	// Selected by namespace and kind, by _id, with the raw entry.
	_, got = oplogPage(t, c, url.Values{"ns": {"shop.orders"}, "op": {"delete", "insert"}, "from": all["from"]})
	if w := slices.Concat(want[1:7], want[10:]); !slices.Equal(got, w) {
		t.Errorf("ns=shop.orders&op=delete&op=insert:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(w, "\n"))
	}
	p, got = oplogPage(t, c, url.Values{"ns": {"shop.orders"}, "id": {`{"$numberInt": "7"}`}, "raw": {"true"}, "from": all["from"]})
	if w := []string{want[2], want[10]}; !slices.Equal(got, w) || len(p.Operations[0].Raw) == 0 {
		t.Errorf("id=7&raw=true: %v (raw %s), want %v with the operations as logged", got, p.Operations[0].Raw, w)
	}

	// Pages of 3: a cursor inside the applyOps, every operation once.
	var paged []string
	q := url.Values{"from": all["from"], "limit": {"3"}}
	var cursors []string
	for range 10 {
		p, got = oplogPage(t, c, q)
		paged = append(paged, got...)
		if p.Next == nil {
			break
		}
		if !p.Truncated || len(got) != 3 {
			t.Fatalf("page %v: %d operations, truncated %v, with a next page", q, len(got), p.Truncated)
		}
		cursors = append(cursors, fmt.Sprintf("%s+%d", p.Next.From, p.Next.Skip))
		q.Set("from", p.Next.From)
		q.Set("skip", fmt.Sprint(p.Next.Skip))
	}
	if wc := []string{e(1) + "+2", e(2) + "+0", e(4) + "+0"}; !slices.Equal(paged, want) || !slices.Equal(cursors, wc) {
		t.Fatalf("pages of 3 (cursors %v, want %v):\n%s\nwant\n%s", cursors, wc, strings.Join(paged, "\n"), strings.Join(want, "\n"))
	}
}

// The summary counts per second, namespace and kind: the bad delete is
// one row of 5 at its second; pages of rows end with a whole second.
func TestOplogSummaryOverAPI(t *testing.T) {
	r := opsRepo(t, "shop")
	c := repoAPI(t, r, false)
	row := func(i int, ns, op string, n int) string {
		return fmt.Sprintf("%s %d shop.%s %s %d", iso(rt.EntryTS(i).T), rt.EntryTS(i).T, ns, op, n)
	}
	want := []string{row(0, "orders", "update", 1), row(1, "orders", "delete", 5), row(2, "orders", "insert", 1),
		row(3, "other", "insert", 1), row(3, "other2", "insert", 1), row(4, "orders", "update", 1), row(5, "orders", "insert", 1)}
	summary := func(q url.Values) (api.OplogSummary, []string) {
		t.Helper()
		var s api.OplogSummary
		c.get("/api/v1/oplog?"+q.Encode(), &s)
		var lines []string
		for _, r := range s.Rows {
			lines = append(lines, fmt.Sprintf("%s %d %s %s %d", r.Time, r.T, r.NS, r.Op, r.Count))
		}
		return s, lines
	}
	s, got := summary(url.Values{"summary": {"true"}, "from": {iso(uint32(rt.T0.Unix()))}})
	if !slices.Equal(got, want) || s.Operations != 11 || s.Truncated || s.Next != nil {
		t.Fatalf("summary:\n%s\nwant\n%s\n(%d operations, truncated %v)", strings.Join(got, "\n"), strings.Join(want, "\n"), s.Operations, s.Truncated)
	}
	s, got = summary(url.Values{"summary": {"1"}, "from": {iso(uint32(rt.T0.Unix()))}, "limit": {"2"}})
	if !slices.Equal(got, want[:2]) || !s.Truncated || s.Next == nil || s.Next.From != iso(rt.EntryTS(2).T) || s.Next.Skip != 0 {
		t.Fatalf("summary with limit 2: %v, truncated %v, next %+v; want the first two seconds and next from %s", got, s.Truncated, s.Next, iso(rt.EntryTS(2).T))
	}
	s, got = summary(url.Values{"summary": {"true"}, "from": {s.Next.From}, "ns": {"shop.other"}})
	if !slices.Equal(got, want[3:4]) {
		t.Fatalf("the next page, ns=shop.other: %v, want %v", got, want[3:4])
	}
	// A page of 4 rows would cut the second of the two inserts: it ends
	// before that second instead.
	s, got = summary(url.Values{"summary": {"true"}, "from": {iso(uint32(rt.T0.Unix()))}, "limit": {"4"}})
	if !slices.Equal(got, want[:3]) || s.Next == nil || s.Next.From != iso(rt.EntryTS(3).T) {
		t.Fatalf("summary with limit 4: %v, next %+v; want the first three seconds and next from %s", got, s.Next, iso(rt.EntryTS(3).T))
	}
}

// Every mistake in the parameters is a 400 naming the parameter; a range
// the repository does not hold and a namespace with no operation are 422
// saying so; the operations need the token even with public_read.
func TestOplogBadInput(t *testing.T) {
	r := opsRepo(t, "shop")
	c := repoAPI(t, r, true)
	for q, words := range map[string]string{
		"from=09:30":                `from "09:30" looks like a clock time`,
		"to=2026-11-25T09:30:00":    `to "2026-11-25T09:30:00" has no time zone`,
		"op=frob":                   `op "frob": want one of insert, update, delete, command`,
		"id=abc":                    `id "abc" is not one Extended JSON value`,
		"limit=0":                   `limit "0": want a whole number from 1 to 10000`,
		"limit=20000":               `limit "20000": want a whole number from 1 to 10000`,
		"limit=many":                `limit "many"`,
		"form=2026-11-20T09:00:00Z": "form is not a parameter of /api/v1/oplog",
		"to=latest&to=latest":       "to is given 2 times",
		"summary=maybe":             `summary "maybe": want true or false`,
		"summary=true&raw=true":     "raw prints the operations as logged; a summary has none",
		"summary=true&skip=2":       "skip pages operations",
		"ns=.x":                     `ns ".x": want db, db.*, db.coll`,
		"from=2026-11-20T10:00:00Z&to=2026-11-20T09:00:00Z": "from 2026-11-20T10:00:00Z is after",
	} {
		a := c.do("GET", "/api/v1/oplog?"+q, token, "")
		if a.Status != 400 {
			t.Errorf("GET /api/v1/oplog?%s: %d, want 400", q, a.Status)
		}
		wantError(t, a, 400, "bad_request", words)
	}
	wantError(t, c.do("GET", "/api/v1/oplog?from=2001-01-01T00:00:00Z&to=2001-01-01T00:01:00Z", token, ""), 422, "not_restorable",
		"nothing captured in the range", "shard rs0 holds no oplog between 2001-01-01T00:00:00Z")
	wantError(t, c.do("GET", "/api/v1/oplog?ns=shop.nothing&from="+iso(uint32(rt.T0.Unix())), token, ""), 422, "not_restorable",
		"list operations: ns shop.nothing matches no namespace with operations between")
	wantError(t, c.do("GET", "/api/v1/oplog?shard=rs9", token, ""), 422, "not_restorable", `shard "rs9": the repository holds no such shard (it holds rs0)`)
	for _, p := range []string{"/api/v1/oplog", "/api/v1/oplog?summary=true", "/api/v1/history?ns=shop.orders&id=1", "/api/v1/export?to=latest&format=archive"} {
		wantError(t, c.do("GET", p, "", ""), 401, "unauthorized", "no token was sent")
	}
	if a := c.do("GET", "/api/v1/timeline", "", ""); a.Status != 200 {
		t.Fatalf("GET /api/v1/timeline with public_read: %d %s", a.Status, a.raw)
	}
}

// A document's history over the API: every version, with its ts and op,
// the document or deleted: order 7 as the snapshot holds it, deleted by
// the bad applyOps, inserted again.
func TestHistoryOverAPI(t *testing.T) {
	r := opsRepo(t, "shop")
	c := repoAPI(t, r, false)
	var h api.HistoryView
	c.get("/api/v1/history?"+url.Values{"ns": {"shop.orders"}, "id": {`{"$numberInt":"7"}`}}.Encode(), &h)
	var got []string
	for _, v := range h.Versions {
		got = append(got, fmt.Sprintf("%s %s in=%s deleted=%v %s", v.TS, v.Op, v.In, v.Deleted, compact(t, v.Document)))
	}
	want := []string{
		fmt.Sprintf(`%s  in= deleted=false {"_id":{"$numberInt":"7"},"grp":{"$numberInt":"3"},"note":"o7"}`, r.Snapshot.End),
		fmt.Sprintf(`%s delete in=applyOps deleted=true null`, rt.EntryTS(1)),
		fmt.Sprintf(`%s insert in= deleted=false {"_id":{"$numberInt":"7"},"grp":{"$numberInt":"3"},"note":"seven again"}`, rt.EntryTS(5)),
	}
	if !slices.Equal(got, want) || compact(t, h.ID) != `{"$numberInt":"7"}` || h.Snapshot != r.Snapshot.ID || h.NS != "shop.orders" {
		t.Fatalf("history of order 7:\n%s\nwant\n%s\n(_id %s, snapshot %s)", strings.Join(got, "\n"), strings.Join(want, "\n"), h.ID, h.Snapshot)
	}
	if !h.Versions[0].Start || h.Versions[1].Time != iso(rt.EntryTS(1).T) {
		t.Errorf("first version start=%v, second's time %s", h.Versions[0].Start, h.Versions[1].Time)
	}
	// From the bad delete on: the first version is the document just before it.
	c.get("/api/v1/history?"+url.Values{"ns": {"shop.orders"}, "id": {"7"}, "from": {rt.EntryTS(1).String()}, "to": {rt.EntryTS(4).String()}}.Encode(), &h)
	if len(h.Versions) != 2 || !strings.Contains(compact(t, h.Versions[0].Document), `"o7"`) || !h.Versions[1].Deleted {
		t.Fatalf("history of order 7 from the delete to entry 4: %+v", h.Versions)
	}

	for q, words := range map[string]string{
		"id=7":                               "ns is required",
		"ns=shop.orders":                     "id is required",
		"ns=shop&id=7":                       `ns "shop": want one collection as db.coll`,
		"ns=shop.orders&id=seven":            `id "seven" is not one Extended JSON value`,
		"ns=shop.orders&id=7&from=yesterday": `from "yesterday"`,
		"ns=shop.orders&id=7&op=delete":      "op is not a parameter of /api/v1/history",
		"ns=shop.orders&id=7&from=" + iso(uint32(rt.T0.Unix()+100)) + "&to=" + iso(uint32(rt.T0.Unix()+50)): "is after",
	} {
		wantError(t, c.do("GET", "/api/v1/history?"+q, token, ""), 400, "bad_request", words)
	}
	wantError(t, c.do("GET", "/api/v1/history?ns=shop.orders&id=7&to=2001-01-01T00:00:00Z", token, ""), 422, "not_restorable", "2001-01-01T00:00:00Z")
	wantError(t, c.do("GET", "/api/v1/history?ns=shop.nothing&id=7", token, ""), 422, "not_restorable", "ns shop.nothing")
}
