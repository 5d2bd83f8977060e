package testserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/gofrs/flock"
)

// Environment variables the harness reads.
const (
	// EnvURI points the tests at a real replica set instead of the embedded server.
	EnvURI = "REWIND_TEST_MONGODB_URI"
	// EnvBin names a prebuilt rewind-testserver binary to use as is.
	EnvBin = "REWIND_TESTSERVER_BIN"
	// EnvCache is the cache directory for built test servers.
	EnvCache = "REWIND_TEST_CACHE"
)

// CacheDir is where built test servers live: $REWIND_TEST_CACHE or
// ~/.cache/rewind-test. It is outside the repository and may be missing.
func CacheDir() (string, error) {
	if dir := os.Getenv(EnvCache); dir != "" {
		return dir, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("find cache directory: %w (set %s)", err, EnvCache)
	}
	return filepath.Join(home, ".cache", "rewind-test"), nil
}

// ModuleDir returns the source directory of the rewind-testserver module,
// found relative to this file so it works from any test package.
func ModuleDir() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("find testserver source: runtime.Caller failed")
	}
	dir := filepath.Join(filepath.Dir(file), "..", "..", "cmd", "rewind-testserver")
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		return "", fmt.Errorf("find testserver module: %w (set %s to a built binary)", err, EnvBin)
	}
	return filepath.Clean(dir), nil
}

// EnsureBinary returns the path of a built rewind-testserver, building it into
// the cache when the cached one is missing or its source changed. A file lock
// keeps parallel test packages from building it twice. $REWIND_TESTSERVER_BIN
// short-circuits all of this.
func EnsureBinary(ctx context.Context) (string, error) {
	if bin := os.Getenv(EnvBin); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("stat %s: %w", EnvBin, err)
		}
		return bin, nil
	}
	src, err := ModuleDir()
	if err != nil {
		return "", err
	}
	key, err := sourceKey(src)
	if err != nil {
		return "", err
	}
	cache, err := CacheDir()
	if err != nil {
		return "", err
	}
	binDir := filepath.Join(cache, "bin")
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", fmt.Errorf("create cache directory: %w", err)
	}
	bin := filepath.Join(binDir, "rewind-testserver-"+key)
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}

	lock := flock.New(filepath.Join(binDir, ".build.lock"))
	locked, err := lock.TryLockContext(ctx, 200*time.Millisecond)
	if err != nil || !locked {
		return "", fmt.Errorf("lock %s: %w", binDir, err)
	}
	defer lock.Unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin, nil // another process built it while we waited
	}
	if err := build(ctx, src, bin); err != nil {
		return "", err
	}
	return bin, nil
}

// build compiles the module into a temporary name and renames it into place,
// so a half-written binary is never found under the final name.
func build(ctx context.Context, src, bin string) error {
	tmp := fmt.Sprintf("%s.tmp%d", bin, os.Getpid())
	defer os.Remove(tmp)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", tmp, ".")
	cmd.Dir = src
	// The module has its own go.mod and go.sum; a go.work from the root
	// must not change how it resolves, and VCS stamping is of no use here.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-buildvcs=false")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build rewind-testserver in %s: %w\n%s", src, err, tail(out, 4000))
	}
	if err := os.Rename(tmp, bin); err != nil {
		return fmt.Errorf("install rewind-testserver: %w", err)
	}
	return nil
}

// sourceKey hashes the module's Go files, go.mod and go.sum.
func sourceKey(dir string) (string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if !d.IsDir() && (strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum") {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hash testserver source: %w", err)
	}
	sort.Strings(files)
	h := sha256.New()
	fmt.Fprintf(h, "%s\n", runtime.Version())
	for _, f := range files {
		rel, _ := filepath.Rel(dir, f)
		fmt.Fprintf(h, "%s\n", rel)
		fh, err := os.Open(f)
		if err != nil {
			return "", fmt.Errorf("hash testserver source: %w", err)
		}
		_, err = io.Copy(h, fh)
		fh.Close()
		if err != nil {
			return "", fmt.Errorf("hash testserver source: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
