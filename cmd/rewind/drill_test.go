package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// rewind drill's answers: no reference yet (exit 1, said clearly), exact
// against the source (exit 0, JSON), a random drill against the reference
// that drill recorded (exit 0), a non-empty scratch (exit 1, untouched),
// and a corrupt chunk (exit 3, naming the object).
func TestDrillCommand(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	shop := srv.DB("shop")
	for i := range 40 {
		if _, err := srv.Client().Database(shop).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "n", Value: i}}); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "repo")
	url := "file://" + dir
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	if code, out, stderr := cli(t, "snapshot", "--repo", url, "--source", srv.URI()); code != 0 {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, stderr)
	}
	scratch := testserver.Start(t)

	code, _, stderr := cli(t, "drill", "--repo", url, "--scratch", scratch.URI(), "--to", "random")
	wantFailure(t, code, stderr, exitFailure, "no reference for this point")

	code, out, stderr := cli(t, "drill", "--repo", url, "--scratch", scratch.URI(), "--source", srv.URI(), "--json")
	var v status.Drill
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Verdict != "exact" || v.Against != "source" || v.Documents != 40 || v.RTOSecondsPerGB <= 0 {
		t.Fatalf("drill --source --json: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = cli(t, "drill", "--repo", url, "--scratch", scratch.URI(), "--to", "random")
	if code != 0 || !strings.Contains(out, "EXACT") || !strings.Contains(out, "recorded for this point") {
		t.Fatalf("random drill: exit %d\n%s%s", code, out, stderr)
	}

	if _, err := scratch.Client().Database(srv.DB("keep")).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = cli(t, "drill", "--repo", url, "--scratch", scratch.URI())
	wantFailure(t, code, stderr, exitFailure, "not empty", srv.DB("keep"))
	if err := scratch.Client().Database(srv.DB("keep")).Drop(ctx); err != nil {
		t.Fatal(err)
	}

	var chunk string
	err := filepath.Walk(filepath.Join(dir, "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && chunk == "" {
			chunk = p
		}
		return err
	})
	if err != nil || chunk == "" {
		t.Fatalf("no chunk found (%v)", err)
	}
	b, err := os.ReadFile(chunk)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 1
	if err := os.WriteFile(chunk, b, 0o600); err != nil {
		t.Fatal(err)
	}
	key, _ := filepath.Rel(dir, chunk)
	code, _, stderr = cli(t, "drill", "--repo", url, "--scratch", scratch.URI(), "--source", srv.URI())
	wantFailure(t, code, stderr, exitProblems, "FAILED", filepath.ToSlash(key))

	code, _, stderr = cli(t, "drill", "--repo", url, "--scratch", scratch.URI(), "--to", "yesterday")
	wantFailure(t, code, stderr, exitUsage, "--to", "random")

	// The history, for auditors: every recorded drill, newest first, and
	// a summary of the verdicts.
	code, out, stderr = cli(t, "drill", "history", "--repo", url, "--json")
	var rep status.DrillReport
	if code != 0 || json.Unmarshal([]byte(out), &rep) != nil {
		t.Fatalf("drill history --json: exit %d\n%s%s", code, out, stderr)
	}
	s := rep.Summary
	if len(rep.Drills) != s.Total || s.Exact != 2 || s.Failed != 1 || s.LastExact == nil || s.LastNotExact == nil ||
		rep.Drills[0].Verdict != "failed" || !strings.Contains(rep.Drills[0].Problem, filepath.ToSlash(key)) ||
		rep.Drills[1].Verdict != "exact" || rep.Drills[1].Chosen != "random" || len(rep.Drills[1].Phases) == 0 || rep.Repository == "" {
		t.Fatalf("drill history --json:\n%s", out)
	}
	code, out, _ = cli(t, "drill", "history", "--repo", url, "--limit", "1")
	if code != 0 || strings.Count(out, "\n") != 3 || !strings.Contains(out, "failed") || !strings.Contains(out, "1 drills: 0 exact, 0 mismatch, 1 failed") {
		t.Fatalf("drill history --limit 1:\n%s", out)
	}
	code, _, stderr = cli(t, "drill", "history", "--repo", url, "--limit", "-1")
	wantFailure(t, code, stderr, exitUsage, "--limit -1")
}
