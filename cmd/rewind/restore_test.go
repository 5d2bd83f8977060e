package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/testserver"
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
		{[]string{"--repo", url, "--target", tgt, "--to", "latest", "--parallel", "0"}, []string{"--parallel"}},
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
	code, out, stderr = cli(t, append(base, "--to", "latest", "--dry-run")...)
	if code != 0 || !strings.Contains(out, "dry run") || !strings.Contains(out, snap) || !regexp.MustCompile(`oplog entries +1\n`).MatchString(out) ||
		!strings.Contains(out, "absent or empty") ||
		!strings.Contains(out, db+".orders") {
		t.Fatalf("dry run: %d\n%s\n%s", code, out, stderr)
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
	wantFailure(t, code, stderr, 1, srv2.DB("restored")+".orders", "--drop", "--rename")
	code, out, _ = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"), "--dry-run")...)
	if code != 0 || !strings.Contains(out, srv2.DB("restored")+".orders already hold data") {
		t.Fatalf("dry run onto restored data: %d\n%s", code, out)
	}
	code, _, stderr = cli(t, append(base, "--to", "latest", "--rename", db+"="+srv2.DB("restored"), "--drop")...)
	if code != 0 {
		t.Fatalf("restore --drop: %s", stderr)
	}
}
