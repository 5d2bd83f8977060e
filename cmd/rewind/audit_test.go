package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// auditEntries reads the repository's audit entries through `rewind audit
// --json`, newest first.
func auditEntries(t *testing.T, url string) []repo.AuditEntry {
	t.Helper()
	code, out, stderr := cli(t, "audit", "--repo", url, "--json", "--limit", "0")
	var v api.AuditView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil {
		t.Fatalf("audit --json: exit %d\n%s%s", code, out, stderr)
	}
	return v.Entries
}

// Every restore, undo and unlock on the command line leaves one audit
// entry naming the command, the host and OS user, the target without its
// password, the namespaces, the point and the outcome, a refused restore
// included; the target is read from --target-file.
func TestAuditRecordsCommands(t *testing.T) {
	srv := testserver.Start(t)
	db := srv.DB("au")
	r := deletedRepo(t, db)
	tf := filepath.Join(t.TempDir(), "target")
	if err := os.WriteFile(tf, []byte(srv.URI()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := cli(t, "restore", "--repo", r.URL, "--target-file", tf, "--to", "latest", "--ns", db); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, out, stderr)
	}
	if code, _, stderr := cli(t, "restore", "--repo", r.URL, "--target-file", tf, "--to", "latest", "--ns", db); code != 1 {
		t.Fatalf("a restore onto its own result must be refused: exit %d\n%s", code, stderr)
	}
	undo := []string{"undo", "--repo", r.URL, "--target-file", tf, "--ns", db + ".people", "--from", rt.EntryTS(-1).String(), "--to", rt.EntryTS(3).String()}
	if code, out, stderr := cli(t, append(undo, "--dry-run")...); code != 0 {
		t.Fatalf("undo --dry-run: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, undo...); code != 0 {
		t.Fatalf("undo: exit %d\n%s%s", code, out, stderr)
	}
	lock, err := r.Lock(context.Background(), repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent"})
	if err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := cli(t, "unlock", "--repo", r.URL, "--all"); code != 0 {
		t.Fatalf("unlock: exit %d\n%s%s", code, out, stderr)
	}

	got := auditEntries(t, r.URL)
	if len(got) != 4 { // the dry run is not recorded
		t.Fatalf("want 4 entries (unlock, undo, refused restore, restore), got %d: %+v", len(got), got)
	}
	host, _ := os.Hostname()
	target := redact.URL(srv.URI())
	for i, want := range []struct{ action, via, to, outcome string }{
		{repo.AuditUnlock, "rewind unlock", "", repo.AuditOK},
		{repo.AuditUndo, "rewind undo", "after " + rt.EntryTS(-1).String(), repo.AuditOK},
		{repo.AuditRestore, "rewind restore", "latest (", "failed: "},
		{repo.AuditRestore, "rewind restore", "latest (", repo.AuditOK},
	} {
		e := got[i]
		if e.Action != want.action || e.Actor.Via != want.via || !strings.HasPrefix(e.To, want.to) || !strings.HasPrefix(e.Outcome, want.outcome) ||
			e.Host != host || e.User == "" || e.PID != os.Getpid() || e.Actor.Token != "" || e.Ended.IsZero() {
			t.Errorf("entry %d = %+v, want %+v", i, e, want)
		}
		if want.action != repo.AuditUnlock && (e.Target != target || len(e.Namespaces) != 1) {
			t.Errorf("entry %d target %q namespaces %v, want %q", i, e.Target, e.Namespaces, target)
		}
	}
	if !strings.Contains(got[0].Detail, "agent lock "+lock.Info().ID) || !strings.Contains(got[2].Outcome, "holds documents") {
		t.Errorf("unlock detail %q, refused restore outcome %q", got[0].Detail, got[2].Outcome)
	}
	code, out, _ := cli(t, "audit", "--repo", r.URL, "--limit", "2")
	if code != 0 || !strings.Contains(out, "rewind unlock") || !strings.Contains(out, "rewind undo") || strings.Contains(out, "rewind restore") {
		t.Errorf("audit --limit 2:\n%s", out)
	}
}

// A prune that deletes leaves an entry saying what it deleted; one that
// deletes nothing leaves none.
func TestAuditRecordsPrune(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	url := "file://" + dir
	if code, out, stderr := cli(t, "prune", "--repo", url, "--restore-window", "3d"); code != 0 {
		t.Fatalf("prune: exit %d\n%s%s", code, out, stderr)
	}
	if code, out, stderr := cli(t, "prune", "--repo", url, "--restore-window", "3d"); code != 0 {
		t.Fatalf("prune again: exit %d\n%s%s", code, out, stderr)
	}
	got := auditEntries(t, url)
	if len(got) != 1 || got[0].Action != repo.AuditPrune || got[0].Actor.Via != "rewind prune" || got[0].Outcome != repo.AuditOK ||
		!strings.HasPrefix(got[0].Detail, "deleted 6 snapshots") {
		t.Fatalf("entries after two prunes: %+v", got)
	}
	// verify knows the entries: a healthy repository stays healthy.
	if code, out, stderr := cli(t, "verify", "--repo", url, "--read-data"); code != 0 || !strings.HasPrefix(out, "HEALTHY") {
		t.Fatalf("verify with an audit entry: exit %d\n%s%s", code, out, stderr)
	}
}
