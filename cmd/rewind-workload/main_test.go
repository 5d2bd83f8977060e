package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var out bytes.Buffer
	code := run(args, &out, &out)
	return code, out.String()
}

// TestRunAndCompare drives the command as a person would: write with marks,
// compare the same server (passes), break one document (exit 3, named).
func TestRunAndCompare(t *testing.T) {
	s := testserver.Start(t)
	marks := filepath.Join(t.TempDir(), "marks.json")
	code, out := runCLI(t, "--uri", s.URI(), "--prefix", s.Prefix(), "--seed", "3", "--ops", "200",
		"--marks", marks, "--mark-every", "3", "--large-every", "0")
	if code != exitOK || !strings.Contains(out, "200 operations") || !strings.Contains(out, "marks written") {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	ns := "--ns=" + s.Prefix() + "app"
	if code, out := runCLI(t, "compare", "--uri", s.URI(), "--marks", marks, ns); code != exitOK {
		t.Fatalf("compare with the last mark: exit %d\n%s", code, out)
	}
	if code, out := runCLI(t, "compare", "--uri", s.URI(), "--marks", marks, "--mark", "1", ns); code != exitMismatch {
		t.Fatalf("compare with the first mark: exit %d, want %d\n%s", code, exitMismatch, out)
	}

	nss := workload.Namespaces(workload.Config{Prefix: s.Prefix()})
	coll := s.Client().Database(nss[0].DB).Collection(nss[0].Coll)
	var doc bson.Raw
	if err := coll.FindOne(context.Background(), bson.D{}).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	if _, err := coll.UpdateOne(context.Background(), bson.D{{Key: "_id", Value: doc.Lookup("_id")}},
		bson.D{{Key: "$set", Value: bson.D{{Key: "tampered", Value: true}}}}); err != nil {
		t.Fatal(err)
	}
	code, out = runCLI(t, "compare", "--uri", s.URI(), "--marks", marks, ns)
	if code != exitMismatch || !strings.Contains(out, "tampered") || !strings.Contains(out, nss[0].String()) {
		t.Fatalf("compare after tampering: exit %d\n%s", code, out)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--uri", "mongodb://127.0.0.1:1"},          // no --ops or --duration
		{"--ops", "10"},                             // no --uri
		{"--bogus"},                                 // unknown flag
		{"compare", "--marks", "/nonexistent", "x"}, // extra argument
	} {
		if code, out := runCLI(t, args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d\n%s", args, code, exitUsage, out)
		}
	}
}
