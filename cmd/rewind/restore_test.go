package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/verify"
)

// Command-line mistakes in restore exit 2 before anything is read.
func TestRestoreUsageErrors(t *testing.T) {
	url := filepath.Join(t.TempDir(), "repo")
	tgt := "mongodb://127.0.0.1:1/"
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--repo", url, "--target", tgt}, []string{"--to is required"}},
		{[]string{"--repo", url, "--to", "latest"}, []string{"--target is required"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "yesterday"}, []string{"yesterday", "RFC 3339", "SECONDS:INCREMENT"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--rename", "shop"}, []string{"FROM=TO"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--rename", "shop=a.b"}, []string{"database to a database"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--ns", "shop.ord*"}, []string{"wildcards"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--parallel", "-1"}, []string{"--parallel", "want a whole number, 1 or more"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "2026-11-25T09:30:00"}, []string{"no time zone", "add Z or an offset", "2026-11-25T09:30:00Z"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--connect-timeout", "-5s"}, []string{"--connect-timeout", "-5s"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--rename", "shop="}, []string{"--rename shop=", "both names"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--ns", "admin"}, []string{"--ns", "system database"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--parallel", "0"}, []string{"--parallel", "want a whole number, 1 or more"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--connect-timeout", "0"}, []string{"--connect-timeout", `"0": want a positive duration`}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--rename", "app.users=x.y", "--rename", "app.users=x.z"},
			[]string{"--rename app.users=x.y and --rename app.users=x.z: app.users is renamed twice"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--rename", "app.users=app.system.x"}, []string{"--rename app.users=app.system.x", "system."}},
		{[]string{"--repo", url, "--target", tgt, "--to", "09:30"}, []string{`--to "09:30" looks like a clock time`, "2026-11-29T09:30:00Z", "`rewind list`"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "0:0"}, []string{`--to "0:0" looks like a clock time`}},
		{[]string{"--repo", url, "--target", tgt, "--to", "86400:1"}, []string{"second 86400 is 1970-01-02T00:00:00Z, before any real deployment's oplog"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--filter", "{grp: 3}"}, []string{`--filter "{grp: 3}" is not JSON`, `{"grp": 3}`}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--filter", "[3]"}, []string{`--filter "[3]" is not a document`}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--merge", "upsert"}, []string{"--merge", `"upsert": want missing`, "or overwrite"}},
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--merge", "missing", "--drop"}, []string{"--merge missing with --drop", "choose one"}},
	} {
		code, _, stderr := cli(t, append([]string{"restore"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}
}

// TestListAndRestore drives list and restore on an encrypted repository
// holding one snapshot: list (human and JSON), a dry run, a restore into a
// second server, and the refusals a user meets.
func TestListAndRestore(t *testing.T) {
	srv, srv2 := testserver.Start(t), testserver.Start(t)
	dir := t.TempDir()
	url := filepath.Join(dir, "repo")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	key := filepath.Join(dir, "key.txt")
	if err := os.WriteFile(key, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := cli(t, "init", "--repo", url, "--recipient", id.Recipient().String()); code != 0 {
		t.Fatal(stderr)
	}
	ctx := context.Background()
	db := srv.DB("cli")
	coll := srv.Client().Database(db).Collection("orders")
	for i := range 20 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "qty", Value: i * 10}}); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := cli(t, "snapshot", "--repo", url, "--source", srv.URI(), "--ns", db+".*")
	if code != 0 {
		t.Fatalf("snapshot: %s %s", out, stderr)
	}

	code, _, stderr = cli(t, "list", "--repo", url)
	wantFailure(t, code, stderr, 1, "encrypted", "--identity")
	code, out, stderr = cli(t, "list", "--repo", url, "--identity", key)
	if code != 0 || !strings.Contains(out, "RESTORE WINDOWS") || !strings.Contains(out, "SNAPSHOTS") || !strings.Contains(out, "20  ") {
		t.Fatalf("list: %d\n%s\n%s", code, out, stderr)
	}
	t.Logf("rewind list:\n%s", out)
	code, out, _ = cli(t, "list", "--repo", url, "--identity", key, "--json")
	var l listJSON
	if err := json.Unmarshal([]byte(out), &l); code != 0 || err != nil || len(l.Shards) != 1 ||
		len(l.Shards[0].Windows) != 1 || len(l.Shards[0].Snapshots) != 1 || l.Shards[0].Snapshots[0].Documents != 20 {
		t.Fatalf("list --json: %d %v\n%s", code, err, out)
	}
	snap := l.Shards[0].Snapshots[0].ID

	base := []string{"restore", "--repo", url, "--identity", key, "--target", srv2.URI()}
	// Nothing wrote during the copy: on FerretDB its data holds the entry at
	// the snapshot's start, which is not replayed; MongoDB's majority copy
	// replays it (restore.Plan.StartInData).
	entries := "1"
	if srv.FerretDB() {
		entries = "0"
	}
	code, out, stderr = cli(t, append(base, "--to", "latest", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, snap) || !regexp.MustCompile(`oplog entries +`+entries+`\n`).MatchString(out) ||
		!strings.Contains(out, "absent or empty") ||
		!strings.Contains(out, db+".orders") || !regexp.MustCompile(`estimated time +about \S+: load .* probed`).MatchString(flat(out)) {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, stderr)
	}
	code, out, stderr = cli(t, append(base, "--to", "latest", "--dry-run", "--json")...)
	var pv api.PlanView
	if err := json.Unmarshal([]byte(out), &pv); code != 0 || err != nil || pv.Snapshot != snap || pv.TargetCheck == nil ||
		pv.Estimate == nil || pv.Estimate.Seconds <= 0 || pv.Estimate.InsertRate <= 0 || pv.Estimate.NotEstimated != "" {
		t.Fatalf("dry run --json: %d %v\n%s\n%s", code, err, out, stderr)
	}
	if names, _ := srv2.Client().ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$regex", Value: "^" + restore.StagingPrefix}}}}); len(names) != 0 {
		t.Fatalf("the dry run's write probe left %v on the target", names)
	}
	if names, _ := srv2.Client().ListDatabaseNames(ctx, bson.D{{Key: "name", Value: db}}); len(names) != 0 {
		t.Fatalf("the dry run created %v on the target", names)
	}

	code, _, stderr = cli(t, append(base, "--to", "2001-01-01T00:00:00Z")...)
	wantFailure(t, code, stderr, 1, "2001-01-01T00:00:00Z is in no restore window", "the first one after it", "rewind list")
	code, _, stderr = cli(t, append(base, "--to", "latest", "--ns", db+".nope")...)
	wantFailure(t, code, stderr, 1, "--ns "+db+".nope matches nothing", db)

	other, _ := age.GenerateX25519Identity()
	wrong := filepath.Join(dir, "wrong.txt")
	if err := os.WriteFile(wrong, []byte(other.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = cli(t, "restore", "--repo", url, "--identity", wrong, "--target", srv2.URI(), "--to", "latest")
	wantFailure(t, code, stderr, 1, "identity does not match")

	code, out, stderr = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"))...)
	if code != 0 || !strings.Contains(out, "documents loaded") {
		t.Fatalf("restore: %d\n%s\n%s", code, out, stderr)
	}
	t.Logf("rewind restore:\n%s", out)
	n, err := srv2.Client().Database(srv2.DB("restored")).Collection("orders").CountDocuments(ctx, bson.D{})
	if err != nil || n != 20 {
		t.Fatalf("restored %d documents (%v), want 20", n, err)
	}
	code, _, stderr = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"))...)
	wantFailure(t, code, stderr, 1, srv2.DB("restored")+".orders: holds documents", "before writing anything", "--drop", "--rename")
	code, out, _ = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"), "--dry-run")...)
	if code != 0 || !strings.Contains(flat(out), srv2.DB("restored")+".orders: holds documents") || !strings.Contains(out, "would refuse") {
		t.Fatalf("dry run onto restored data: %d\n%s", code, out)
	}
	code, _, stderr = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"), "--drop")...)
	if code != 0 {
		t.Fatalf("restore --drop: %s", stderr)
	}

	// An empty capped collection in the way: the dry run and the refusal
	// say the same, nothing is loaded; --drop re-creates it as the backup's.
	capped := srv2.DB("capped")
	if err := srv2.Client().Database(capped).CreateCollection(ctx, "orders",
		options.CreateCollection().SetCapped(true).SetSizeInBytes(4096).SetMaxDocuments(1)); err != nil {
		t.Fatal(err)
	}
	why := capped + ".orders: exists empty but is capped (size 4096, max 1), the backup's is not capped"
	// The restore point as RFC 3339 with a lower-case t and z, as RFC 3339 allows.
	end := strings.ToLower(time.Unix(int64(l.Shards[0].Windows[0].To.T), 0).UTC().Format(time.RFC3339))
	into := append(base, "--to", end, "--rename", db+"="+capped)
	code, out, stderr = cli(t, append(into, "--dry-run")...)
	if code != 0 || !strings.Contains(flat(out), why) || !strings.Contains(out, "would refuse") {
		t.Fatalf("dry run onto an empty capped collection: %d\n%s\n%s", code, out, stderr)
	}
	code, _, stderr = cli(t, into...)
	wantFailure(t, code, stderr, 1, why, "before writing anything")
	if n, _ := srv2.Client().Database(capped).Collection("orders").CountDocuments(ctx, bson.D{}); n != 0 {
		t.Fatalf("the refused restore loaded %d documents", n)
	}
	code, out, stderr = cli(t, append(into, "--drop")...)
	if code != 0 {
		t.Fatalf("restore --drop onto the capped collection: %s\n%s", out, stderr)
	}
	specs, err := srv2.Client().Database(capped).ListCollectionSpecifications(ctx, bson.D{})
	n, _ = srv2.Client().Database(capped).Collection("orders").CountDocuments(ctx, bson.D{})
	if err != nil || len(specs) != 1 || specs[0].Options.Lookup("capped").Type != 0 || n != 20 {
		t.Fatalf("after --drop: %v %v, %d documents; want the backup's plain collection with 20", specs, err, n)
	}
}

// flat undoes the wrapping of printed output: one space between words.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// The plan, the target check and the report fit the line: long namespaces
// are shortened in the middle (both ends stay), long values wrap under
// their label, short names are left alone. The demo's 250-character
// collection names once made 250-column lines.
func TestRestoreOutputFitsTheWidth(t *testing.T) {
	long := restore.Namespace{DB: "shop", Coll: strings.Repeat("orders_archive_", 15) + "2026"}
	wide := restore.Namespace{DB: "app", Coll: "ünïcødé-コレクション-" + strings.Repeat("x", 60) + "-emoji😀end"}
	short := restore.Namespace{DB: "shop", Coll: "items"}
	plan := restore.Plan{Snapshot: catalog.Snapshot{ID: "20261125T093000Z-1a2b3c4d"}, Flavor: "mongodb", Entries: 12,
		Collections: []restore.CollectionPlan{{Source: long, Target: long}, {Source: short, Target: short}},
		Late:        []restore.LateNamespace{{Source: wide, Target: wide}}}
	rep := restore.Report{Snapshot: plan.Snapshot.ID, Namespaces: []restore.NamespaceReport{{Source: long, Target: long, Loaded: 3, Final: 3},
		{Source: short, Target: short}}}
	findings := []restore.Finding{{Target: long, Reasons: []string{"exists empty but is capped (size 4096, max 1), the backup's is not capped"}}}
	for _, width := range []int{60, 80, plainWidth} {
		var b strings.Builder
		if err := errors.Join(printPlan(&b, width, plan, true), printTargetCheck(&b, width, findings, &api.EstimateView{Summary: "about 1s"}, restore.Request{}, true),
			printReport(&b, width, rep)); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
			if displayWidth(line) > width {
				t.Fatalf("width %d: a line of %d columns:\n%s\nin\n%s", width, displayWidth(line), line, out)
			}
		}
		for _, want := range []string{"shop.ord", "_2026", "app.ün", "😀end", "shop.items", "…",
			"exists empty but is capped (size 4096, max 1)"} {
			if !strings.Contains(out, want) {
				t.Fatalf("width %d: output lacks %q:\n%s", width, want, out)
			}
		}
		if width == plainWidth {
			t.Logf("at %d columns:\n%s", width, out)
		}
	}
}

// The newcomer's report: --rename onto a collection that exists only in
// the oplog range (created after the snapshot) restored both sources into
// one collection and exited 0. Now the restore and its dry run refuse it,
// before writing anything, naming both sources.
func TestRestoreRefusesARenameOntoAnOplogCollection(t *testing.T) {
	srv := testserver.Start(t)
	app, other := srv.DB("app"), srv.DB("other")
	r := rt.New(t, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: app, Name: "users", Docs: []bson.D{{{Key: "_id", Value: 1}}}}},
		Entries: []bson.D{
			rt.Insert(app+".later", bson.D{{Key: "_id", Value: 2}}),
			rt.Insert(other+".stuff", bson.D{{Key: "_id", Value: 3}}),
		}})
	for _, rename := range []string{app + ".users=" + app + ".later", other + ".stuff=" + app + ".later", app + ".later=" + app + ".users"} {
		for _, dry := range []bool{true, false} {
			args := []string{"restore", "--repo", r.URL, "--to", "latest", "--target", srv.URI(), "--rename", rename}
			if dry {
				args = append(args, "--dry-run")
			}
			code, out, stderr := cli(t, args...)
			wantFailure(t, code, stderr, 1, "--rename "+rename+":", "would both be restored as", "created after the snapshot")
			if out != "" {
				t.Errorf("%v printed a plan before refusing:\n%s", args, out)
			}
		}
	}
	if names, err := srv.Client().ListDatabaseNames(context.Background(), bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: bson.A{app, other}}}}}); err != nil || len(names) != 0 {
		t.Fatalf("the refused restores created %v (%v)", names, err)
	}
}

// verify --restore-to's table of namespaces fits the line as the restore
// plan does (it once printed 235 columns for the demo's long names), and
// an empty restore point says why it has no row.
func TestTrialTableFitsTheWidth(t *testing.T) {
	long := "shop." + strings.Repeat("orders_archive_", 15) + "2026"
	tr := verify.Trial{Point: optime.Timestamp{T: 1795627746, I: 3}, Snapshot: "20261125T093000Z-1a2b3c4d", Entries: 12,
		Namespaces: []verify.TrialNamespace{{Namespace: long, Recorded: 3, Loaded: 3, Final: 5}, {Namespace: "shop.items", Recorded: 1, Loaded: 1, Final: 1}}}
	var b strings.Builder
	if err := printVerify(&b, verify.Report{}, &tr); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		if displayWidth(line) > plainWidth {
			t.Fatalf("a line of %d columns:\n%s\nin\n%s", displayWidth(line), line, out)
		}
	}
	for _, want := range []string{"TRIAL RESTORE", "shop.ord", "_2026", "…", "shop.items", "NAMESPACE"} {
		if !strings.Contains(out, want) {
			t.Fatalf("trial table lacks %q:\n%s", want, out)
		}
	}
	t.Logf("verify --restore-to at %d columns:\n%s", plainWidth, out)
	b.Reset()
	tr.Namespaces = nil
	if err := printVerify(&b, verify.Report{}, &tr); err != nil || !strings.Contains(flat(b.String()), restore.EmptyNote) {
		t.Fatalf("trial restore of an empty point: %v\n%s", err, b.String())
	}
}
