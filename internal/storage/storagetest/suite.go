// Package storagetest holds the conformance suite every storage backend
// must pass, and a harness that runs the storage emulators (versitygw for
// S3, fake-gcs-server for GCS, Azurite for Azure Blob) for tests in any
// package.
//
// The emulators are built into $REWIND_TEST_CACHE (default
// ~/.cache/rewind-test) on first use, or ahead of time by
// scripts/install-test-servers.sh. A server that cannot be built or started
// fails the test: nothing here ever skips a backend.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Opener returns a fresh, empty store for one test; the suite closes it.
type Opener func(t *testing.T) storage.Store

// Option adjusts the suite to a kind of store.
type Option func(*suiteOptions)

type suiteOptions struct {
	inMemory bool
}

// InMemory says the store keeps its objects' bytes in memory (a test
// double): the large-object test then lets a Put grow the heap and the
// resident set by the stored object itself, once, and no more. Every other
// check is the same, so a store that buffers a second copy on Put, or any
// copy on Get, still fails.
func InMemory(o *suiteOptions) { o.inMemory = true }

// Run runs the conformance suite. Every subtest calls open for its own
// store. Subtests run one after another: the large-object test measures
// heap growth, which other tests running at the same time would disturb.
func Run(t *testing.T, open Opener, opts ...Option) {
	var o suiteOptions
	for _, opt := range opts {
		opt(&o)
	}
	tests := []struct {
		name string
		fn   func(t *testing.T, s storage.Store)
	}{
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"Empty", testEmpty},
		{"NotFound", testNotFound},
		{"InvalidKeys", testInvalidKeys},
		{"Stat", testStat},
		{"Delete", testDelete},
		{"ListOrder", testListOrder},
		{"ListPrefix", testListPrefix},
		{"ListCallbackError", testListCallbackError},
		{"OddKeys", testOddKeys},
		{"ConcurrentWriters", testConcurrentWriters},
		{"CancelUpload", testCancelUpload},
		{"ReaderError", testReaderError},
		{"LargeObject", func(t *testing.T, s storage.Store) { testLargeObject(t, s, o) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func put(t *testing.T, s storage.Store, key, data string) {
	t.Helper()
	if err := s.Put(ctxT(t), key, strings.NewReader(data)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func get(t *testing.T, s storage.Store, key string) string {
	t.Helper()
	r, err := s.Get(ctxT(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %q: %v", key, err)
	}
	return string(b)
}

func list(t *testing.T, s storage.Store, prefix string) []storage.Info {
	t.Helper()
	var out []storage.Info
	err := s.List(ctxT(t), prefix, func(i storage.Info) error {
		out = append(out, i)
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return out
}

func keys(infos []storage.Info) []string {
	out := make([]string, len(infos))
	for i, in := range infos {
		out[i] = in.Key
	}
	return out
}

func sameKeys(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) == 0 && len(want) == 0 {
		return
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\n got  %q\n want %q", what, got, want)
	}
}

func testPutGet(t *testing.T, s storage.Store) {
	put(t, s, "config", "hello")
	put(t, s, "segments/0000000001.0000000002-0000000003.0000000004.zst", "seg")
	if got := get(t, s, "config"); got != "hello" {
		t.Errorf("Get(config) = %q, want %q", got, "hello")
	}
	if got := get(t, s, "segments/0000000001.0000000002-0000000003.0000000004.zst"); got != "seg" {
		t.Errorf("Get(segment) = %q, want %q", got, "seg")
	}
	// Binary data survives byte for byte.
	bin := make([]byte, 1<<16)
	for i := range bin {
		bin[i] = byte(i * 7)
	}
	put(t, s, "bin", string(bin))
	if got := get(t, s, "bin"); got != string(bin) {
		t.Errorf("Get(bin) returned %d bytes that differ from the %d put", len(got), len(bin))
	}
}

func testOverwrite(t *testing.T, s storage.Store) {
	put(t, s, "k", "a much longer first version")
	put(t, s, "k", "v2")
	if got := get(t, s, "k"); got != "v2" {
		t.Errorf("Get after overwrite = %q, want %q", got, "v2")
	}
	if got := keys(list(t, s, "")); len(got) != 1 {
		t.Errorf("List after overwrite = %q, want one key", got)
	}
}

func testEmpty(t *testing.T, s storage.Store) {
	put(t, s, "empty", "")
	if got := get(t, s, "empty"); got != "" {
		t.Errorf("Get(empty) = %q, want nothing", got)
	}
	info, err := s.Stat(ctxT(t), "empty")
	if err != nil || info.Size != 0 {
		t.Errorf("Stat(empty) = %+v, %v; want size 0", info, err)
	}
	if got := list(t, s, ""); len(got) != 1 || got[0].Size != 0 {
		t.Errorf("List = %+v, want the empty object", got)
	}
}

func testNotFound(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	put(t, s, "dir/present", "x")
	for _, k := range []string{"missing", "dir/missing", "dir", "dir/present/below", "missing/deeper/key"} {
		if _, err := s.Get(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want ErrNotFound", k, err)
		}
		if _, err := s.Stat(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Stat(%q) = %v, want ErrNotFound", k, err)
		}
		if err := s.Delete(ctx, k); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Delete(%q) = %v, want ErrNotFound", k, err)
		}
	}
	if got := list(t, s, "missing"); len(got) != 0 {
		t.Errorf("List(missing) = %q, want nothing", keys(got))
	}
}

func testInvalidKeys(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	for _, k := range []string{"", "/abs", "a/", "a//b", "a/../b", "..", "a/./b", "nul\x00", "back\\slash", "new\nline"} {
		if err := s.Put(ctx, k, strings.NewReader("x")); err == nil {
			t.Errorf("Put(%q) succeeded, want an invalid key error", k)
		}
		if _, err := s.Get(ctx, k); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Get(%q) = %v, want an invalid key error", k, err)
		}
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("invalid keys left objects: %q", keys(got))
	}
}

func testStat(t *testing.T, s storage.Store) {
	before := time.Now()
	put(t, s, "a/stat", "12345")
	info, err := s.Stat(ctxT(t), "a/stat")
	if err != nil {
		t.Fatalf("Stat: %v", err)
	}
	if info.Key != "a/stat" || info.Size != 5 {
		t.Errorf("Stat = %+v, want key a/stat, size 5", info)
	}
	// Servers round times to the second; allow for that and slow machines.
	if info.ModTime.Before(before.Add(-2*time.Minute)) || info.ModTime.After(time.Now().Add(2*time.Minute)) {
		t.Errorf("Stat ModTime = %v, want about %v", info.ModTime, before)
	}
	l := list(t, s, "a/")
	if len(l) != 1 || l[0].Size != 5 || l[0].ModTime.IsZero() {
		t.Errorf("List(a/) = %+v, want a/stat with size 5 and a time", l)
	}
}

func testDelete(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	put(t, s, "d/one", "1")
	put(t, s, "d/two", "2")
	if err := s.Delete(ctx, "d/one"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := s.Get(ctx, "d/one"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("Get after Delete = %v, want ErrNotFound", err)
	}
	if err := s.Delete(ctx, "d/one"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("second Delete = %v, want ErrNotFound", err)
	}
	sameKeys(t, "List after Delete", keys(list(t, s, "")), []string{"d/two"})
	// A deleted prefix can be written again.
	if err := s.Delete(ctx, "d/two"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	put(t, s, "d/three", "3")
	sameKeys(t, "List after rewrite", keys(list(t, s, "")), []string{"d/three"})
}

// orderKeys are chosen so that walking directories in name order gives the
// wrong answer: "-" (0x2d) and "." (0x2e) sort before "/" (0x2f), "0" after.
// No key is also the "directory" of another ("a" and "a/b"): the file
// backend, and S3 servers that keep objects as files, cannot hold both, and
// the repository format never needs it.
var orderKeys = []string{
	"a/b", "a-c", "a.d", "a0", "a/b-x", "a/b0", "a/c/d", "a/c-e", "a/c0", "b", "ab",
	"segments/0000000010.0000000001", "segments/0000000002.0000000001",
	"segments/0000000002.0000000010", "Z", "~tilde", "x/é", "x/z",
}

func testListOrder(t *testing.T, s storage.Store) {
	for _, k := range orderKeys {
		put(t, s, k, k)
	}
	want := append([]string(nil), orderKeys...)
	sort.Strings(want)
	got := list(t, s, "")
	sameKeys(t, "List order", keys(got), want)
	for _, in := range got {
		if in.Size != int64(len(in.Key)) {
			t.Errorf("List size of %q = %d, want %d", in.Key, in.Size, len(in.Key))
		}
	}
}

func testListPrefix(t *testing.T, s storage.Store) {
	for _, k := range orderKeys {
		put(t, s, k, k)
	}
	for _, prefix := range []string{"a", "a/", "a/b", "a/c", "a/c/", "segments/", "segments/0000000002", "x/", "nothing", "b"} {
		var want []string
		for _, k := range orderKeys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		sort.Strings(want)
		sameKeys(t, fmt.Sprintf("List(%q)", prefix), keys(list(t, s, prefix)), want)
	}
}

func testListCallbackError(t *testing.T, s storage.Store) {
	put(t, s, "1", "")
	put(t, s, "2", "")
	stop := errors.New("stop here")
	calls := 0
	err := s.List(ctxT(t), "", func(storage.Info) error { calls++; return stop })
	if !errors.Is(err, stop) {
		t.Errorf("List returned %v, want the callback's error", err)
	}
	if calls != 1 {
		t.Errorf("callback called %d times after returning an error, want 1", calls)
	}
}

// oddKeys holds every character class a key may carry: the repository
// format's own (lower case, digits, ".", "_", "-", "/", hex, uuids) and the
// ones that break naive URL escaping.
var oddKeys = []string{
	"repo/0123456789abcdef/_-.x",
	"snapshots/5f1c2e7a-8b3d-4c1e-9f00-112233445566/manifest.json",
	"with space/and more spaces ",
	"unicode/ünïcødé/日本語/😀",
	"dollar$", "plus+sign", "per%cent", "per%25encoded", "equals=sign", "at@sign",
	"colon:", "question?mark", "hash#tag", "amp&ersand", "semi;colon", "comma,",
	"quote\"d", "apostrophe'", "star*", "tilde~", "caret^", "pipe|", "lt<gt>",
	"brackets[]{}()", "backtick`", "bang!", "__0x41__", "trailing.", ".leading",
	"UPPER/Case",
}

func testOddKeys(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	for _, k := range oddKeys {
		put(t, s, k, k)
	}
	want := append([]string(nil), oddKeys...)
	sort.Strings(want)
	sameKeys(t, "List of odd keys", keys(list(t, s, "")), want)
	for _, k := range oddKeys {
		if got := get(t, s, k); got != k {
			t.Errorf("Get(%q) = %q", k, got)
		}
		if info, err := s.Stat(ctx, k); err != nil || info.Key != k || info.Size != int64(len(k)) {
			t.Errorf("Stat(%q) = %+v, %v", k, info, err)
		}
		if got := keys(list(t, s, k)); len(got) != 1 || got[0] != k {
			t.Errorf("List(%q) = %q, want only itself", k, got)
		}
	}
	for _, k := range oddKeys {
		if err := s.Delete(ctx, k); err != nil {
			t.Errorf("Delete(%q): %v", k, err)
		}
	}
	if got := list(t, s, ""); len(got) != 0 {
		t.Errorf("List after deleting every odd key = %q", keys(got))
	}
}

func testConcurrentWriters(t *testing.T, s storage.Store) {
	ctx := ctxT(t)
	const distinct, same = 16, 8
	var wg sync.WaitGroup
	errs := make(chan error, distinct+same)
	for i := range distinct {
		wg.Go(func() {
			k := fmt.Sprintf("many/%03d", i)
			if err := s.Put(ctx, k, strings.NewReader(strings.Repeat(k, 1000))); err != nil {
				errs <- err
			}
		})
	}
	// Writers of one key: the survivor must be one whole version.
	versions := map[string]bool{}
	for i := range same {
		v := strings.Repeat(fmt.Sprintf("version %d;", i), 20000+i)
		versions[v] = true
		wg.Go(func() {
			if err := s.Put(ctx, "one/key", strings.NewReader(v)); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Put: %v", err)
	}
	var want []string
	for i := range distinct {
		k := fmt.Sprintf("many/%03d", i)
		want = append(want, k)
		if got := get(t, s, k); got != strings.Repeat(k, 1000) {
			t.Errorf("Get(%q) returned %d wrong bytes", k, len(got))
		}
	}
	sameKeys(t, "List after concurrent writers", keys(list(t, s, "")), append(want, "one/key"))
	if got := get(t, s, "one/key"); !versions[got] {
		t.Errorf("Get(one/key) after concurrent overwrites is not one whole version (%d bytes)", len(got))
	}
}

// readerFunc adapts a function to io.Reader.
type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// zeroes yields n zero bytes, then calls after and returns what it returns.
func zeroes(n int, after func() (int, error)) io.Reader {
	left := n
	return readerFunc(func(p []byte) (int, error) {
		if left == 0 {
			return after()
		}
		m := min(len(p), left)
		clear(p[:m])
		left -= m
		return m, nil
	})
}
