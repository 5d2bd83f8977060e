// Package testdisk makes disk faults for tests: a small tmpfs that a test
// fills up or remounts read-only. Tests run as root; where mounting is
// refused the test skips, quoting the error.
package testdisk

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// Tmpfs mounts a tmpfs of size bytes on a new directory named name,
// unmounted at the end of the test. It skips the test, quoting mount's
// error, where mounting is refused (not root, no CAP_SYS_ADMIN).
func Tmpfs(t testing.TB, name string, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("mount -t tmpfs refused (%v: %s): disk faults need a filesystem the test can fill", err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", "-l", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill fills the filesystem at dir with a file, and keeps it full (as
// another program writing there would) until the returned function
// removes the file.
func Fill(t testing.TB, dir string) (free func()) {
	t.Helper()
	f, err := os.Create(filepath.Join(dir, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	fill := func() {
		for n := len(chunk); n > 0; {
			if _, err := f.Write(chunk[:n]); err != nil {
				n /= 2 // the last blocks: smaller writes
			}
		}
	}
	fill()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				fill()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		if err := f.Close(); err != nil {
			t.Error(err)
		}
		if err := os.Remove(f.Name()); err != nil {
			t.Error(err)
		}
	}
}

// ReadOnly remounts the filesystem at dir read-only, checks a write there
// fails with EROFS, and returns the function that makes it writable again.
func ReadOnly(t testing.TB, dir string) (writable func()) {
	t.Helper()
	remount := func(mode string) {
		if out, err := exec.Command("mount", "-o", "remount,"+mode, dir).CombinedOutput(); err != nil {
			t.Fatalf("remount %s %s: %v: %s", dir, mode, err, out)
		}
	}
	remount("ro")
	if err := os.WriteFile(filepath.Join(dir, "probe"), nil, 0o600); !errors.Is(err, syscall.EROFS) {
		t.Fatalf("write to %s after remounting it read-only: %v, want EROFS", dir, err)
	}
	return func() { remount("rw") }
}
