package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// shopRepo is a repository written by hand: shop.orders {_id: 1..3} in
// the snapshot, then one entry a second from T0+10 s: an insert, an
// update, a delete, a batched delete of two documents (applyOps) and a
// drop of another collection.
func shopRepo(t *testing.T) *rt.Repo {
	doc := func(id int) bson.D { return bson.D{{Key: "_id", Value: id}, {Key: "grp", Value: id % 2}} }
	diff := bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "grp", Value: 7}}}}}}
	return rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: "shop", Name: "orders", Docs: []bson.D{doc(1), doc(2), doc(3)}}},
		Entries: []bson.D{
			rt.Insert("shop.orders", doc(4)),  // T0+10
			rt.Update("shop.orders", 1, diff), // T0+11
			rt.Delete("shop.orders", 2),       // T0+12
			{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "applyOps", // T0+13
				Value: bson.A{rt.Delete("shop.orders", 3), rt.Delete("shop.orders", 4)}}}}},
			{{Key: "op", Value: "c"}, {Key: "ns", Value: "shop.$cmd"}, {Key: "o", Value: bson.D{{Key: "drop", Value: "tmp"}}}}, // T0+14
		}})
}

func at(sec int) string { return rt.T0.Add(secs(sec)).Format("2006-01-02T15:04:05Z") }

// TestOplogCommand: the listing's lines, --summary's table, their JSON
// Lines and --raw, on a repository written by hand.
func TestOplogCommand(t *testing.T) {
	r := shopRepo(t)
	base := []string{"oplog", "--repo", r.URL, "--from", at(0), "--to", "latest"}

	code, out, stderr := cli(t, append(base, "--summary")...)
	if code != 0 {
		t.Fatalf("summary: %d %s", code, stderr)
	}
	for _, want := range []string{
		"SECOND                NAMESPACE    OP       COUNT",
		at(13) + "  shop.orders  delete   2",
		at(14) + "  shop.tmp     command  1",
		"6 operations in 5 lines; 2 segments: 2 counted from their index, 0 read whole",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}

	code, out, _ = cli(t, append(base, "--summary", "--json", "--op", "delete")...)
	var rows []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var row map[string]any
		if err := json.Unmarshal([]byte(l), &row); err != nil {
			t.Fatalf("summary --json line %q: %v", l, err)
		}
		rows = append(rows, row)
	}
	if code != 0 || len(rows) != 2 || rows[1]["count"] != 2.0 || rows[1]["time"] != at(13) || rows[1]["ns"] != "shop.orders" || rows[1]["op"] != "delete" {
		t.Fatalf("summary --json: %d %v", code, rows)
	}

	code, out, _ = cli(t, append(base, "--ns", "shop.orders", "--op", "delete")...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 5 || !strings.HasPrefix(lines[1], at(13)+"  ") ||
		!strings.Contains(lines[1], `delete   shop.orders  {"$numberInt":"3"}  (in applyOps)  {"_id"`) ||
		!strings.HasPrefix(lines[3], "3 operations of shard rs0 from "+at(0)) {
		t.Fatalf("list: %d\n%s", code, out)
	}
	for _, l := range lines {
		if displayWidth(l) > plainWidth {
			t.Errorf("a line of %d columns, over %d: %s", displayWidth(l), plainWidth, l)
		}
	}

	code, out, _ = cli(t, append(base, "--id", "1", "--json")...)
	var op map[string]json.RawMessage
	if code != 0 || strings.Count(out, "\n") != 1 || json.Unmarshal([]byte(out), &op) != nil {
		t.Fatalf("--id 1 --json: %d %q", code, out)
	}
	for k, want := range map[string]string{"ts": fmt.Sprintf(`{"t":%d,"i":1}`, rt.T0.Unix()+11), "time": `"` + at(11) + `"`, "op": `"update"`,
		"ns": `"shop.orders"`, "_id": `{"$numberInt":"1"}`, "change": `{"$v":{"$numberInt":"2"},"diff":{"u":{"grp":{"$numberInt":"7"}}}}`} {
		if string(op[k]) != want {
			t.Errorf("--json %s: %s, want %s", k, op[k], want)
		}
	}
	if _, ok := op["raw"]; ok {
		t.Errorf("--json without --raw has the raw entry")
	}

	// --raw: the stored entries, the applyOps once for its two deletes.
	code, out, _ = cli(t, append(base, "--ns", "shop.orders", "--op", "delete", "--raw")...)
	lines = strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 2 || !strings.Contains(lines[1], `"applyOps":[{"op":"d"`) || !strings.HasPrefix(lines[0], `{"ts":{"$timestamp":`) {
		t.Fatalf("--raw: %d\n%s", code, out)
	}
}

// TestOplogBadInput: mistakes in the command line exit 2 before anything is
// read; a range or a namespace the repository does not hold exits 1,
// saying what it holds.
func TestOplogBadInput(t *testing.T) {
	r := shopRepo(t)
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--id", "abc"}, []string{"--id", "not one Extended JSON value", `'"abc"'`}},
		{[]string{"--from", at(20), "--to", at(10)}, []string{"--from", "is after"}},
		{[]string{"--from", "09:30"}, []string{`--from "09:30" looks like a clock time`}},
		{[]string{"--op", "upsert"}, []string{"--op", "insert, update, delete, command"}},
		{[]string{"--ns", "shop.[x"}, []string{"--ns", "syntax error in pattern"}},
		{[]string{"--summary", "--raw"}, []string{"--raw"}},
	} {
		code, _, stderr := cli(t, append([]string{"oplog", "--repo", r.URL}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}
	code, _, stderr := cli(t, "oplog", "--repo", r.URL, "--from", "2026-01-01T00:00:00Z", "--to", "2026-01-01T01:00:00Z")
	wantFailure(t, code, stderr, 1, "nothing captured in the range", "holds no oplog between 2026-01-01T00:00:00Z", "it holds "+at(0))
	code, _, stderr = cli(t, "oplog", "--repo", r.URL, "--from", at(0), "--ns", "shop.nope", "--summary")
	wantFailure(t, code, stderr, 1, "--ns shop.nope matches no namespace")
	code, _, stderr = cli(t, "oplog", "--repo", filepath.Join(t.TempDir(), "none"))
	wantFailure(t, code, stderr, 10, "no rewind repository")
}

// TestHistoryCommand: the versions of one document, as text and JSON
// Lines, and the history's own mistakes.
func TestHistoryCommand(t *testing.T) {
	r := shopRepo(t)
	code, out, stderr := cli(t, "history", "--repo", r.URL, "--ns", "shop.orders", "--id", "4")
	if code != 0 {
		t.Fatalf("history: %d %s", code, stderr)
	}
	for _, want := range []string{
		`History of _id {"$numberInt":"4"} in shop.orders (shard rs0): replayed from snapshot`,
		"start (the document just before the range)\n    absent: no document with this _id at the start",
		at(10) + "  " + fmt.Sprint(rt.T0.Unix()+10) + ":1  insert\n    {\n      \"_id\": {\n        \"$numberInt\": \"4\"\n      },",
		at(13) + "  " + fmt.Sprint(rt.T0.Unix()+13) + ":1  delete (in applyOps)\n    deleted",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("history lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = cli(t, "history", "--repo", r.URL, "--ns", "shop.orders", "--id", "1", "--json")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := fmt.Sprintf(`{"ts":{"t":%d,"i":1},"time":"%s","op":"update","ns":"shop.orders","deleted":false,"document":{"_id":{"$numberInt":"1"},"grp":{"$numberInt":"7"}}}`, rt.T0.Unix()+11, at(11))
	if code != 0 || len(lines) != 2 || lines[1] != want || !strings.Contains(lines[0], `"start":true`) {
		t.Fatalf("history --json: %d\n%s\nwant second line\n%s", code, out, want)
	}

	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--id", "1"}, []string{"--ns is required"}},
		{[]string{"--ns", "shop.orders"}, []string{"--id is required"}},
		{[]string{"--ns", "shop.orders", "--id", "{nope"}, []string{"--id", "not one Extended JSON value"}},
		{[]string{"--ns", "shop.*", "--id", "1"}, []string{"--ns", "one collection as db.coll"}},
		{[]string{"--ns", "shop.orders", "--id", "1", "--from", at(20), "--to", at(10)}, []string{"--from", "is after"}},
	} {
		code, _, stderr := cli(t, append([]string{"history", "--repo", r.URL}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}
	code, _, stderr = cli(t, "history", "--repo", r.URL, "--ns", "shop.nope", "--id", "1")
	wantFailure(t, code, stderr, 1, "shop.nope is neither a collection of snapshot")
	code, _, stderr = cli(t, "history", "--repo", r.URL, "--ns", "shop.orders", "--id", "1", "--from", "2026-01-01T00:00:00Z")
	wantFailure(t, code, stderr, 1, "is in no restore window", "rewind list")
}

func secs(n int) time.Duration { return time.Duration(n) * time.Second }
