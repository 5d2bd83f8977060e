package export_test

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
)

// Bad requests are refused before anything is read, each naming its field
// and what to do.
func TestValidate(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	must(t, os.MkdirAll(filepath.Join(full, "db"), 0o700))
	empty := filepath.Join(dir, "empty")
	must(t, os.Mkdir(empty, 0o700))
	file := filepath.Join(dir, "old.archive")
	must(t, os.WriteFile(file, []byte("x"), 0o600))
	emptyFile := filepath.Join(dir, "empty.archive")
	must(t, os.WriteFile(emptyFile, nil, 0o600))
	latest := restore.When{Latest: true}
	for _, tc := range []struct {
		req   export.Request
		field string
		wants []string
	}{
		{export.Request{Format: export.BSON, Out: "x"}, "to", []string{"is required", "latest"}},
		{export.Request{To: latest, Out: "x"}, "format", []string{"is required", "jsonl, bson or archive"}},
		{export.Request{To: latest, Format: "csv", Out: "x"}, "format", []string{`"csv"`, "jsonl", "archive"}},
		{export.Request{To: latest, Format: export.BSON}, "out", []string{"is required", "- for standard output"}},
		{export.Request{To: latest, Format: export.BSON, Out: full}, "out", []string{"is not empty", "new or empty directory"}},
		{export.Request{To: latest, Format: export.JSONL, Out: full, Force: true}, "out", []string{"is not empty", "--force replaces only an archive file"}},
		{export.Request{To: latest, Format: export.JSONL, Out: file}, "out", []string{"is a file", "writes a directory"}},
		{export.Request{To: latest, Format: export.Archive, Out: file}, "out", []string{"exists", "--force"}},
		{export.Request{To: latest, Format: export.Archive, Out: empty}, "out", []string{"is a directory", "one file"}},
		{export.Request{To: latest, Format: export.Archive, Out: filepath.Join(dir, "no", "such", "a.archive")}, "out", []string{"does not exist", "create it first"}},
		{export.Request{To: latest, Format: export.Archive, Out: "-", Include: []string{"shop.ord*"}}, "ns", []string{"wildcards"}},
	} {
		err := tc.req.Validate()
		var inv *restore.InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field {
			t.Errorf("%+v: %v, want an error about --%s", tc.req, err, tc.field)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%+v: %q does not say %q", tc.req, err, w)
			}
		}
	}
	for _, ok := range []export.Request{
		{To: latest, Format: export.BSON, Out: empty},
		{To: latest, Format: export.JSONL, Out: filepath.Join(dir, "new")},
		{To: latest, Format: export.Archive, Out: emptyFile},
		{To: latest, Format: export.Archive, Out: file, Force: true},
		{To: latest, Format: export.Archive, Out: "-"},
	} {
		if err := ok.Validate(); err != nil {
			t.Errorf("%+v: %v", ok, err)
		}
	}
}

// File names follow mongodump's rule, so mongorestore reads the names back.
func TestFileName(t *testing.T) {
	for coll, want := range map[string]string{
		"plain":                  "plain",
		"a.b":                    "a.b",
		"with space":             "with+space",
		"a/b":                    "a%2Fb",
		"ünï":                    "%C3%BCn%C3%AF",
		"emoji😀coll":             "emoji%F0%9F%98%80coll",
		"dotted.name.with.parts": "dotted.name.with.parts",
	} {
		if got := export.FileName(coll); got != want {
			t.Errorf("FileName(%q) = %q, want %q", coll, got, want)
		}
		if back, _ := url.QueryUnescape(export.FileName(coll)); back != coll {
			t.Errorf("%q does not unescape to %q", export.FileName(coll), coll)
		}
	}
	long := strings.Repeat("コ", 80) // 240 bytes, 720 escaped
	a, b := export.FileName(long), export.FileName(long+"x")
	if len(a) != 238 || !strings.Contains(a, "%24") || a == b {
		t.Errorf("long names: %q (%d bytes) and %q: want 238 bytes with %%24 and a hash that tells them apart", a, len(a), b)
	}
}
