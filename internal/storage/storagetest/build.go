package storagetest

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
)

// Emulator versions. scripts/install-test-servers.sh installs the same ones.
const (
	VersityGWVersion = "v1.8.0"
	FakeGCSVersion   = "v1.56.1"
	AzuriteVersion   = "3.35.0"
)

// Environment variables that point the harness at prebuilt executables
// instead of the cache.
const (
	EnvVersityGW = "REWIND_VERSITYGW"
	EnvFakeGCS   = "REWIND_FAKE_GCS_SERVER"
	EnvAzurite   = "REWIND_AZURITE" // the azurite-blob executable
	EnvCache     = "REWIND_TEST_CACHE"
)

// CacheDir is where emulators are built: $REWIND_TEST_CACHE or
// ~/.cache/rewind-test, outside the repository.
func CacheDir(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(EnvCache); dir != "" {
		return dir
	}
	home, err := os.UserHomeDir()
	if err != nil {
		t.Fatalf("find the test cache directory: %v (set %s)", err, EnvCache)
	}
	return filepath.Join(home, ".cache", "rewind-test")
}

// goBinary returns the path of a Go-built emulator: $envVar if set,
// otherwise the cached build, built now if missing or of another version.
func goBinary(t testing.TB, envVar, name, pkg, version string) string {
	t.Helper()
	if p := os.Getenv(envVar); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", envVar, p, err)
		}
		return p
	}
	cache := CacheDir(t)
	bin := filepath.Join(cache, "bin", name)
	if binaryVersion(bin) == version {
		return bin
	}
	unlock := lockCache(t, cache, name)
	defer unlock()
	if binaryVersion(bin) == version { // built by another package meanwhile
		return bin
	}
	t.Logf("building %s %s into %s (several minutes; scripts/install-test-servers.sh does this ahead of time)", name, version, bin)
	start := time.Now()
	tmp, err := os.MkdirTemp(cache, ".build-"+name+".")
	if err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("go", "install", pkg+"@"+version)
	cmd.Dir = tmp
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOFLAGS=")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s %s with go install: %v\n%s", name, version, err, tail(out, 4000))
	}
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	if err := os.Rename(filepath.Join(tmp, name), bin); err != nil {
		t.Fatalf("build %s: %v", name, err)
	}
	t.Logf("built %s %s in %s", name, version, time.Since(start).Round(time.Second))
	return bin
}

// binaryVersion is the main module version a Go binary was built from, or
// "" if it is missing or not a Go binary.
func binaryVersion(path string) string {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return ""
	}
	return bi.Main.Version
}

// azuriteBinary returns the azurite-blob executable, installing Azurite with
// npm into the cache if needed.
func azuriteBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv(EnvAzurite); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", EnvAzurite, p, err)
		}
		return p
	}
	cache := CacheDir(t)
	dir := filepath.Join(cache, "azurite-"+AzuriteVersion)
	bin := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	unlock := lockCache(t, cache, "azurite")
	defer unlock()
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("installing azurite %s into %s with npm", AzuriteVersion, dir)
	tmp, err := os.MkdirTemp(cache, ".build-azurite.")
	if err != nil {
		t.Fatalf("install azurite: %v", err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private":true}`), 0o644); err != nil {
		t.Fatalf("install azurite: %v", err)
	}
	cmd := exec.Command("npm", "install", "--no-audit", "--no-fund", "--loglevel=error", "azurite@"+AzuriteVersion)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("install azurite %s with npm (Node 20 and the npm registry are needed): %v\n%s", AzuriteVersion, err, tail(out, 4000))
	}
	os.RemoveAll(dir)
	os.Chmod(tmp, 0o755) // MkdirTemp makes it owner-only; the cache is shared
	if err := os.Rename(tmp, dir); err != nil {
		t.Fatalf("install azurite: %v", err)
	}
	return bin
}

// lockCache takes the lock file the install script also takes, so that
// test packages and the script never build the same emulator twice.
func lockCache(t testing.TB, cache, name string) func() {
	t.Helper()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatalf("create test cache %s: %v", cache, err)
	}
	l := flock.New(filepath.Join(cache, ".lock-"+name))
	if err := l.Lock(); err != nil {
		t.Fatalf("lock test cache for %s: %v", name, err)
	}
	return func() { l.Unlock() }
}

// tail returns the last n bytes of b as text.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
