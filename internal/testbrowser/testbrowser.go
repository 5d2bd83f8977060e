// Package testbrowser drives the dashboard's pages in a headless Chromium
// for tests (chromedp): it finds the browser, starts it off the network,
// runs steps with a deadline that fail the test naming the step and
// showing the page's text, and takes the screenshots the README shows.
package testbrowser

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// StepTimeout bounds one step (Do or Get).
const StepTimeout = 60 * time.Second

// Find returns the path of Debian's chromium (scripts/install-test-servers.sh
// installs it) or of the browser named by REWIND_CHROMIUM; without one the
// test fails saying how to get it.
func Find(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("REWIND_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: run scripts/install-test-servers.sh (it installs Debian's chromium) or set REWIND_CHROMIUM")
	return ""
}

// Start starts the headless browser at path with its own profile and a
// 1200x1500 window, stopped when the test ends, and returns its context
// for Do and Get. The flags keep it off the network: this machine refuses
// Chromium's background connections.
func Start(t testing.TB, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1200, 1500))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first run starts the browser; it must not have a deadline (one
	// would stop the browser with it), later steps do.
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return bctx
}

// Do runs browser actions within StepTimeout and fails the test naming
// the step.
func Do(t testing.TB, b context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	Get(t, b, step, chromedp.Steps(actions...))
}

// Get runs one browser action that answers a value, like Do.
func Get[T any](t testing.TB, b context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, StepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		// Show what the user would have seen.
		pctx, cancel := context.WithTimeout(b, 5*time.Second)
		defer cancel()
		page, _ := chromedp.Run(pctx, chromedp.Evaluate[string](`document.body.innerText`))
		t.Fatalf("dashboard: %s: %v\nthe page says:\n%s", step, err, page)
	}
	return v
}

// Screenshot takes the whole page as PNG, checks it is one of at least
// 800x600, and writes it to docs/NAME of the repository when
// REWIND_UPDATE_DOCS=1 (for the README; the test runs in internal/PKG),
// else to a temporary directory.
func Screenshot(t testing.TB, b context.Context, name string) {
	t.Helper()
	img := Get(t, b, "take a screenshot", chromedp.FullScreenshot(100))
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width < 800 || cfg.Height < 600 {
		t.Fatalf("screenshot: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
	path := filepath.Join(t.TempDir(), name)
	if os.Getenv("REWIND_UPDATE_DOCS") == "1" {
		path = filepath.Join("..", "..", "docs", name)
	}
	if err := os.WriteFile(path, img, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot %dx%d in %s", cfg.Width, cfg.Height, path)
}
