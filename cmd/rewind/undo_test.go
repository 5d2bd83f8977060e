package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// deletedRepo is a hand-built repository: db.people holds 12 people with a
// grp (_id % 3); after the snapshot the oplog deletes the grp 2 ones
// (entries 0..3) and then inserts _id 100.
func deletedRepo(t *testing.T, db string) *rt.Repo {
	var people []bson.D
	for i := range 12 {
		people = append(people, bson.D{{Key: "_id", Value: int32(i)}, {Key: "grp", Value: int32(i % 3)}})
	}
	var entries []bson.D
	for i := 2; i < 12; i += 3 {
		entries = append(entries, rt.Delete(db+".people", int32(i)))
	}
	entries = append(entries, rt.Insert(db+".people", bson.D{{Key: "_id", Value: int32(100)}, {Key: "grp", Value: int32(2)}}))
	return rt.New(t, rt.Spec{Flavor: "mongodb", Entries: entries, Collections: []rt.Collection{{DB: db, Name: "people", Docs: people}}})
}

func peopleIDs(t *testing.T, srv *testserver.Server, db string) string {
	t.Helper()
	ctx := context.Background()
	cur, err := srv.Client().Database(db).Collection("people").Find(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for cur.Next(ctx) {
		ids = append(ids, cur.Current.Lookup("_id").String())
	}
	return strings.Join(ids, " ")
}

// `rewind undo` and `rewind restore --filter --merge` on the command line:
// a dry run says what would change and changes nothing, the undo puts the
// deleted documents back and leaves the one written again since alone
// (listed as a conflict); restore --filter --merge missing reports its
// counts.
func TestUndoCommand(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.DB("cu")
	r := deletedRepo(t, db)
	if code, out, stderr := cli(t, "restore", "--repo", r.URL, "--target", srv.URI(), "--to", "latest"); code != 0 {
		t.Fatalf("restore the live state: exit %d\n%s%s", code, out, stderr)
	}
	people := srv.Client().Database(db).Collection("people")
	if _, err := people.InsertOne(ctx, bson.D{{Key: "_id", Value: int32(5)}, {Key: "grp", Value: "written again"}}); err != nil {
		t.Fatal(err)
	}
	before := peopleIDs(t, srv, db)
	base := []string{"undo", "--repo", r.URL, "--target", srv.URI(), "--ns", db + ".people", "--from", rt.EntryTS(-1).String(), "--to", rt.EntryTS(3).String()}

	code, out, stderr := cli(t, append(base, "--dry-run")...)
	if flat := flat(out); code != 0 || !strings.Contains(flat, "dry run: nothing is changed") ||
		!strings.Contains(flat, "4 changed by the range: 0 would be restored, 3 would be re-inserted, 0 would be deleted, 0 unchanged, 1 conflicts left alone") ||
		!strings.Contains(flat, "writes _id 2, 8, 11") || !strings.Contains(flat, "conflicts _id 5") {
		t.Fatalf("undo --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if after := peopleIDs(t, srv, db); after != before {
		t.Fatalf("the dry run changed the target: %s, was %s", after, before)
	}
	t.Logf("rewind undo --dry-run:\n%s", out)

	code, out, stderr = cli(t, base...)
	if code != 0 || !strings.Contains(flat(out), "3 re-inserted") || !strings.Contains(flat(out), "1 changed since --to: left alone") {
		t.Fatalf("undo: exit %d\n%s%s", code, out, stderr)
	}
	n, err := people.CountDocuments(ctx, bson.D{})
	if err != nil || n != 13 {
		t.Fatalf("after the undo people holds %d documents (%v), want 13: 12 and _id 100", n, err)
	}

	// The same deleted documents through restore --filter --merge missing,
	// after deleting them again.
	if _, err := people.DeleteMany(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: bson.A{int32(2), int32(8)}}}}}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = cli(t, "restore", "--repo", r.URL, "--target", srv.URI(), "--to", rt.EntryTS(-1).String(), "--ns", db+".people",
		"--filter", `{"grp": 2}`, "--merge", "missing")
	if code != 0 || !strings.Contains(flat(out), "4 documents: 2 inserted, 0 replaced, 2 left alone") {
		t.Fatalf("restore --filter --merge missing: exit %d\n%s%s", code, out, stderr)
	}
	t.Logf("rewind restore --filter --merge missing:\n%s", out)
}

// Mistakes on the command line exit 2 before anything is read; a range
// the repository cannot serve, or a namespace it never held, exit 1.
func TestUndoErrors(t *testing.T) {
	url := filepath.Join(t.TempDir(), "repo")
	tgt := "mongodb://127.0.0.1:1/"
	from, to := rt.EntryTS(1).String(), rt.EntryTS(3).String()
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--repo", url, "--target", tgt, "--to", to, "--ns", "a"}, []string{"--from is required"}},
		{[]string{"--repo", url, "--target", tgt, "--from", from, "--ns", "a"}, []string{"--to is required"}},
		{[]string{"--repo", url, "--target", tgt, "--from", from, "--to", to}, []string{"--ns is required"}},
		{[]string{"--repo", url, "--from", from, "--to", to, "--ns", "a"}, []string{"--target is required"}},
		{[]string{"--repo", url, "--target", tgt, "--from", to, "--to", from, "--ns", "a"}, []string{"--from " + to + " is not before --to " + from}},
		{[]string{"--repo", url, "--target", tgt, "--from", "latest", "--to", "latest", "--ns", "a"}, []string{"--from latest: nothing comes after it"}},
		{[]string{"--repo", url, "--target", tgt, "--from", "09:30", "--to", "latest", "--ns", "a"}, []string{`--from "09:30" looks like a clock time`}},
		{[]string{"--repo", url, "--target", tgt, "--from", from, "--to", to, "--ns", "a", "--filter", "{grp: 3}"}, []string{`--filter "{grp: 3}" is not JSON`}},
		{[]string{"--repo", url, "--target", tgt, "--from", from, "--to", to, "--ns", "a.b*"}, []string{"wildcards"}},
	} {
		code, _, stderr := cli(t, append([]string{"undo"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}

	srv := testserver.Start(t)
	db := srv.DB("ce")
	r := deletedRepo(t, db)
	late := optime.Timestamp{T: rt.EntryTS(4).T + 3600, I: 1}
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--ns", db, "--from", from, "--to", late.String()}, []string{"the range's end, " + late.String(), "is in no restore window", "rewind list"}},
		{[]string{"--ns", db + ".nope", "--from", from, "--to", to}, []string{"--ns " + db + ".nope matches nothing"}},
	} {
		code, _, stderr := cli(t, append([]string{"undo", "--repo", r.URL, "--target", srv.URI()}, tc.args...)...)
		wantFailure(t, code, stderr, 1, tc.wants...)
		if strings.Contains(stderr, fmt.Sprint(srv.URI())) {
			t.Errorf("the error shows the target's URI: %s", stderr)
		}
	}
}
