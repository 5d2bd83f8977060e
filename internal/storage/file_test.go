package storage

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	good := []string{
		"a", "config", "segments/0000000001.0000000002-0000000003.0000000004.zst",
		"x/y z/ünï cødé/$+%=@:", "a.b", ".hidden", "a-b_c", "日本語/キー",
	}
	for _, k := range good {
		if err := ValidateKey(k); err != nil {
			t.Errorf("ValidateKey(%q) = %v, want nil", k, err)
		}
	}
	bad := []string{
		"", "/abs", "a/", "a//b", "..", "a/../b", "a..b", "./a", "a/./b", "a\x00b",
		"a\\b", "a\nb", "a/.rewind-tmp-123", strings.Repeat("x", 256),
		strings.Repeat("a/", 600) + "a", "\xff",
	}
	for _, k := range bad {
		if err := ValidateKey(k); err == nil {
			t.Errorf("ValidateKey(%q) = nil, want an error", k)
		}
	}
}

func TestOpenFileForms(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, u := range []string{dir + "/plain", "file://" + dir + "/url", "file://localhost" + dir + "/host"} {
		s, err := Open(ctx, u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if err := s.Put(ctx, "k", strings.NewReader("v")); err != nil {
			t.Fatalf("Put in %q: %v", u, err)
		}
		s.Close()
	}
	for _, u := range []string{"", "file://otherhost/x", "file:///x?a=b", "file://rel", "ftp://x/y", "s3://AKID:pw@bucket/p"} {
		if _, err := Open(ctx, u); err == nil {
			t.Errorf("Open(%q) = nil error, want an error", u)
		}
		// CheckURL refuses what Open refuses, without opening anything.
		if err := CheckURL(u); err == nil {
			t.Errorf("CheckURL(%q) = nil error, want an error", u)
		}
	}
	for _, u := range []string{dir + "/unmade", "file://" + dir + "/unmade2", "s3://bucket/p?region=x", "gs://b", "azblob://c"} {
		if err := CheckURL(u); err != nil {
			t.Errorf("CheckURL(%q): %v", u, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "unmade")); !os.IsNotExist(err) {
		t.Errorf("CheckURL created the directory it checked: %v", err)
	}
	f := filepath.Join(dir, "afile")
	os.WriteFile(f, nil, 0o600)
	if _, err := Open(ctx, f); err == nil {
		t.Errorf("Open of a regular file succeeded, want an error")
	}
}

func TestFileBasics(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a/b", "a-c", "a/b0", "b", "a/bc/d"} {
		if err := s.Put(ctx, k, strings.NewReader(k)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	if err := s.List(ctx, "", func(i Info) error { got = append(got, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := "a-c a/b a/b0 a/bc/d b"; strings.Join(got, " ") != want {
		t.Errorf("List = %q, want %q", strings.Join(got, " "), want)
	}
	got = nil
	s.List(ctx, "a/b", func(i Info) error { got = append(got, i.Key); return nil })
	if want := "a/b a/b0 a/bc/d"; strings.Join(got, " ") != want {
		t.Errorf("List(a/b) = %q, want %q", strings.Join(got, " "), want)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, "", func(Info) error { return stop }); err != stop {
		t.Errorf("List callback error = %v, want it returned unchanged", err)
	}
	r, err := s.Get(ctx, "a/bc/d")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "a/bc/d" {
		t.Errorf("Get = %q", b)
	}
	for _, k := range []string{"missing", "a", "a/b/c"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", k, err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", k, err)
		}
	}
	if err := s.Delete(ctx, "a/bc/d"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "bc")); !os.IsNotExist(err) {
		t.Errorf("empty directory a/bc left behind after Delete: %v", err)
	}
	// A temp file left by a crash is never listed.
	os.WriteFile(filepath.Join(dir, "a", tempPrefix+"123"), []byte("x"), 0o600)
	got = nil
	s.List(ctx, "a/", func(i Info) error { got = append(got, i.Key); return nil })
	if want := "a/b a/b0"; strings.Join(got, " ") != want {
		t.Errorf("List(a/) with a temp file = %q, want %q", strings.Join(got, " "), want)
	}
}

// TestFileFailedPutLeavesNoTempFile: a cancelled or failed Put removes its
// temp file, so crashes aside the directory holds only objects.
func TestFileFailedPutLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	r := readerFunc(func(p []byte) (int, error) {
		if n++; n > 10 {
			cancel()
		}
		return len(p), nil
	})
	if err := s.Put(ctx, "deep/er/key", r); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled Put = %v, want context.Canceled", err)
	}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			t.Errorf("file left behind by a cancelled Put: %s", p)
		}
		return nil
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }
