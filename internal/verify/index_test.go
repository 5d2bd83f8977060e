package verify_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/verify"
)

// TestIndexFindings: segment indexes are neither unknown keys nor orphans
// while their segment is listed; a missing one is a note (nothing is lost),
// one whose segment is gone is an orphan note, and with --read-data one
// that does not match its segment is a problem that breaks no restore
// point.
func TestIndexFindings(t *testing.T) {
	tests := []struct {
		name     string
		readData bool
		damage   func(t *testing.T, f *fixture) string // returns the key of the finding
		severity string
		kind     string
		message  string
	}{
		{"missing index", false, func(t *testing.T, f *fixture) string {
			must(t, os.Remove(filepath.Join(f.dir, repo.IndexKey(f.segs[5].Key))))
			return repo.IndexKey(f.segs[5].Key)
		}, verify.Note, verify.NoIndex, "1 segments of shard rs0 have no index"},
		{"index without its segment", false, func(t *testing.T, f *fixture) string {
			must(t, os.Remove(filepath.Join(f.dir, f.segs[29].Key))) // the last: no hole
			return repo.IndexKey(f.segs[29].Key)
		}, verify.Note, "orphan", "index of a segment that is gone"},
		{"index of another segment under this one's key", true, func(t *testing.T, f *fixture) string {
			b, err := os.ReadFile(filepath.Join(f.dir, repo.IndexKey(f.segs[3].Key)))
			must(t, err)
			must(t, os.WriteFile(filepath.Join(f.dir, repo.IndexKey(f.segs[20].Key)), b, 0o644))
			return repo.IndexKey(f.segs[20].Key)
		}, verify.Problem, "corrupt", "index spans"},
		{"flipped byte in an index", true, func(t *testing.T, f *fixture) string {
			return flip(t, f, repo.IndexKey(f.segs[7].Key))
		}, verify.Problem, "corrupt", "index of oplog segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, 30)
			key := tt.damage(t, f)
			rep := run(t, f, tt.readData)
			if len(rep.Findings) != 1 {
				t.Fatalf("%d findings, want 1: %+v", len(rep.Findings), rep.Findings)
			}
			got := rep.Findings[0]
			if got.Object != key || got.Severity != tt.severity || got.Kind != tt.kind || !strings.Contains(got.Message, tt.message) {
				t.Fatalf("finding %+v; want %s %s on %s mentioning %q", got, tt.severity, tt.kind, key, tt.message)
			}
			if len(got.Breaks) != 0 || len(rep.Remaining) != 1 || rep.Remaining[0].From != f.snaps[0].End {
				t.Fatalf("an index breaks no restore point: breaks %+v, remaining %+v", got.Breaks, rep.Remaining)
			}
		})
	}
}

// TestIndexesChecked: without damage, verify counts the indexes among the
// objects it checked and, with --read-data, reads them back.
func TestIndexesChecked(t *testing.T) {
	f := newFixture(t, 30)
	plain := run(t, f, false)
	must(t, os.Remove(filepath.Join(f.dir, repo.IndexKey(f.segs[4].Key))))
	fewer := run(t, f, true)
	if plain.Objects != fewer.Objects+1 {
		t.Fatalf("objects checked: %d with every index, %d with one fewer", plain.Objects, fewer.Objects)
	}
}
