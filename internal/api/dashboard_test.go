package api_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// The dashboard's page and assets are served without a token, with a
// strict content security policy; a missing asset is a 404 in the envelope.
func TestDashboardAssets(t *testing.T) {
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))
	for path, wantType := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/app.css": "text/css"} {
		resp, err := http.Get(c.base + path)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), wantType) || len(body) < 500 {
			t.Fatalf("GET %s: %d %q, %d bytes", path, resp.StatusCode, resp.Header.Get("Content-Type"), len(body))
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") {
			t.Fatalf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	wantError(t, c.do("GET", "/ui/nothing.js", "", ""), 404, "not_found", "/ui/nothing.js")
	wantError(t, c.do("GET", "/ui/index.html", "", ""), 404, "not_found")
}

// A user opens the dashboard in a browser, gives the token once, sees the
// restore window on the timeline, clicks a second in it, plans the restore
// (dry run), starts it, and watches the job succeed; the target then holds
// exactly the state of that second. The screenshot goes to docs/ when
// REWIND_UPDATE_DOCS=1.
func TestDashboardInBrowser(t *testing.T) {
	chromium := findChromium(t)
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))
	ctx := t.Context()

	rec := &oracle.Recorder{Client: srv.Client()}
	wcfg := runWorkload(t, srv, 5, 120, "ui", rec)
	dbs := workload.Databases(wcfg)
	rec.Filter = oracle.Filter{Include: dbs}
	quiet, err := rec.Record(ctx, workload.Batch{}) // the state of the pause below
	must(t, err)
	snap := c.do("POST", "/api/v1/snapshots", token, "")
	job := waitJob(t, c, "/api/v1/jobs/", snap)
	result := job.Result.(map[string]any)
	snapshotID, end := result["id"].(string), result["end"].(map[string]any)["t"].(float64)

	// Nothing is written during second `pick`; more writes follow it.
	pick := max(int64(quiet.TS.T), int64(end)) + 1
	for time.Now().Unix() < pick+2 {
		time.Sleep(100 * time.Millisecond)
	}
	runWorkload(t, srv, 6, 60, "ui", nil)
	last, err := oracle.LastOplogTS(ctx, srv.Client())
	must(t, err)
	waitFor(t, 60*time.Second, "capture stores the workload", func() bool {
		return !c.a.Stats().LastDurable().Before(last)
	})

	srv2 := testserver.Start(t)
	rename := map[string]string{}
	var renameLines []string
	for i, db := range dbs {
		rename[db] = srv2.DB(fmt.Sprintf("ui%d", i))
		renameLines = append(renameLines, db+"="+rename[db])
	}

	b := newBrowser(t, chromium)
	do(t, b, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible("#token-box"))
	do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))
	do(t, b, "see the timeline", chromedp.WaitReady(`#timeline rect.window`), chromedp.WaitNotVisible("#token-box"))
	xy := get(t, b, "find the restore point on the timeline", chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => {
		const b = document.getElementById("timeline").getBoundingClientRect(), d = state.domain;
		return [b.left + (%d + 0.5 - d[0]) / (d[1] - d[0]) * b.width, b.top + b.height / 2];
	})()`, pick)))
	do(t, b, "click it", chromedp.MouseClickXY(xy[0], xy[1]))
	to := get(t, b, "read the restore point", chromedp.Value("#r-to"))
	if want := time.Unix(pick, 0).UTC().Format(time.RFC3339); to != want {
		t.Fatalf("clicking second %d filled the restore point %q, want %q", pick, to, want)
	}
	do(t, b, "plan the restore",
		chromedp.SendKeys("#r-target", srv2.URI()),
		chromedp.SendKeys("#r-rename", strings.Join(renameLines, "\n")),
		chromedp.SendKeys("#r-ns", strings.Join(dbs, "\n")),
		chromedp.Click("#r-plan"),
		chromedp.WaitVisible("#plan"),
	)
	planText := get(t, b, "read the plan", chromedp.Text("#plan"))
	if !strings.Contains(planText, snapshotID) || !strings.Contains(planText, rename[dbs[0]]) {
		t.Fatalf("the plan does not name the snapshot and the targets:\n%s", planText)
	}
	do(t, b, "start the restore", chromedp.WaitEnabled("#r-start"), chromedp.Click("#r-start"))

	var state string
	waitFor(t, 3*time.Minute, "the restore job ends on the page", func() bool {
		state = get(t, b, "read the jobs", chromedp.Evaluate[string](`(() => {
			const r = document.querySelector('#jobs tr[data-job^="restore-"]');
			return r ? r.dataset.state : "";
		})()`))
		return state == api.StateSucceeded || state == api.StateFailed
	})
	row := get(t, b, "read the jobs", chromedp.Text("#jobs"))
	if state != api.StateSucceeded {
		t.Fatalf("the restore started from the dashboard ended %s:\n%s", state, row)
	}
	if err := oracle.Compare(ctx, srv2.Client(), quiet, oracle.Filter{Include: dbs, Rename: rename}); err != nil {
		t.Fatalf("the restore to %s started from the dashboard differs from the state then: %v", to, err)
	}
	screenshot(t, b, "dashboard.png")
}

// findChromium finds Debian's chromium (scripts/install-test-servers.sh
// installs it) or the browser named by REWIND_CHROMIUM.
func findChromium(t *testing.T) string {
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

// newBrowser starts a headless chromium with its own profile, stopped when
// the test ends. The flags keep it off the network: this machine refuses
// Chromium's background connections.
func newBrowser(t *testing.T, path string) context.Context {
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

// do runs browser actions with a deadline and fails the test naming the step.
func do(t *testing.T, b context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	get(t, b, step, chromedp.Steps(actions...))
}

// get runs one browser action that answers a value, like do.
func get[T any](t *testing.T, b context.Context, step string, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b, 60*time.Second)
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

// screenshot takes the whole page as PNG, checks it is one, and writes it to
// docs/NAME when REWIND_UPDATE_DOCS=1 (for the README).
func screenshot(t *testing.T, b context.Context, name string) {
	img := get(t, b, "take a screenshot", chromedp.FullScreenshot(100))
	cfg, err := png.DecodeConfig(bytes.NewReader(img))
	if err != nil || cfg.Width < 800 || cfg.Height < 600 {
		t.Fatalf("screenshot: %v, %dx%d", err, cfg.Width, cfg.Height)
	}
	path := filepath.Join(t.TempDir(), name)
	if os.Getenv("REWIND_UPDATE_DOCS") == "1" {
		path = filepath.Join("..", "..", "docs", name)
	}
	must(t, os.WriteFile(path, img, 0o644))
	t.Logf("screenshot %dx%d in %s", cfg.Width, cfg.Height, path)
}
