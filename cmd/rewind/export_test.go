package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// Command-line mistakes in export exit 2 before anything is read, naming
// the flag and what to do.
func TestExportUsageErrors(t *testing.T) {
	dir := t.TempDir()
	url := filepath.Join(dir, "repo")
	full := filepath.Join(dir, "full")
	if err := os.MkdirAll(filepath.Join(full, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	old := filepath.Join(dir, "old.archive")
	if err := os.WriteFile(old, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--repo", url, "--format", "bson", "--out", "x"}, []string{"--to is required"}},
		{[]string{"--repo", url, "--to", "latest", "--out", "x"}, []string{"--format is required", "jsonl, bson or archive"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "csv", "--out", "x"}, []string{`--format "csv"`, "jsonl", "archive"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "bson"}, []string{"--out is required", "- for standard output"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "bson", "--out", full}, []string{"--out " + full + " is not empty", "new or empty directory"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "archive", "--out", old}, []string{"--out " + old + " exists", "--force"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "archive", "--out", "-", "--ns", "a.b*"}, []string{"--ns", "wildcards"}},
		{[]string{"--repo", url, "--to", "09:30", "--format", "archive", "--out", "-"}, []string{"--to", "clock time"}},
		{[]string{"--repo", url, "--to", "latest", "--format", "archive", "--out", "-", "--parallel", "0"}, []string{"--parallel"}},
	} {
		code, _, stderr := cli(t, append([]string{"export"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}
}

// An export to standard output writes the archive there and its report on
// stderr; a restore point outside the windows and a namespace the backup
// does not hold fail (exit 1) saying what to do.
func TestExportCommand(t *testing.T) {
	r := rt.New(t, rt.Spec{Collections: []rt.Collection{{DB: "shop", Name: "orders", Docs: []bson.D{{{Key: "_id", Value: int32(1)}}}}},
		Entries: []bson.D{rt.Insert("shop.orders", bson.D{{Key: "_id", Value: int32(2)}})}})
	base := []string{"export", "--repo", r.URL}
	code, out, stderr := cli(t, append(base, "--to", "latest", "--format", "archive", "--out", "-")...)
	if code != 0 || !bytes.HasPrefix([]byte(out), []byte{0x6d, 0xe2, 0x99, 0x81}) || !strings.Contains(stderr, "Exported the data as of") ||
		!strings.Contains(stderr, "2 written") || !strings.Contains(stderr, "shop.orders") {
		t.Fatalf("export to -: exit %d, stdout %q, stderr:\n%s", code, out, stderr)
	}
	dump := filepath.Join(t.TempDir(), "dump")
	code, out, stderr = cli(t, append(base, "--to", "latest", "--format", "jsonl", "--out", dump)...)
	if b, err := os.ReadFile(filepath.Join(dump, "shop", "orders.jsonl")); code != 0 || err != nil ||
		string(b) != "{\"_id\":{\"$numberInt\":\"1\"}}\n{\"_id\":{\"$numberInt\":\"2\"}}\n" || !strings.Contains(out, "shop/orders.*") {
		t.Fatalf("export to %s: exit %d, %q (%v); stdout:\n%s\nstderr:\n%s", dump, code, b, err, out, stderr)
	}
	// A directory written as the README writes it, "dump/": new, and
	// existing but empty.
	for _, mk := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "bson")
		if mk {
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		code, out, stderr = cli(t, append(base, "--to", "latest", "--format", "bson", "--out", dir+"/")...)
		if _, err := os.Stat(filepath.Join(dir, "shop", "orders.bson")); code != 0 || err != nil {
			t.Fatalf("export to %s/ (existing %v): exit %d (%v); stdout:\n%s\nstderr:\n%s", dir, mk, code, err, out, stderr)
		}
	}
	code, _, stderr = cli(t, append(base, "--to", "2001-01-01T00:00:00Z", "--format", "archive", "--out", "-")...)
	wantFailure(t, code, stderr, 1, "2001-01-01T00:00:00Z is in no restore window", "rewind list")
	code, _, stderr = cli(t, append(base, "--to", "latest", "--format", "archive", "--out", "-", "--ns", "shop.nope")...)
	wantFailure(t, code, stderr, 1, "--ns shop.nope matches nothing", "shop")
	code, _, stderr = cli(t, append(base, "--to", "latest", "--format", "archive", "--out", "-", "--ns", "nowhere")...)
	wantFailure(t, code, stderr, 1, "--ns nowhere matches nothing")
}
