package api_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/oracle"
	tb "github.com/rewind-backup/rewind/internal/testbrowser"
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
	chromium := tb.Find(t)
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

	b := tb.Start(t, chromium)
	tb.Do(t, b, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible("#token-box"))
	tb.Do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))
	tb.Do(t, b, "see the timeline", chromedp.WaitReady(`#timeline rect.window`), chromedp.WaitNotVisible("#token-box"))
	xy := tb.Get(t, b, "find the restore point on the timeline", chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => {
		const b = document.getElementById("timeline").getBoundingClientRect(), d = state.domain;
		return [b.left + (%d + 0.5 - d[0]) / (d[1] - d[0]) * b.width, b.top + b.height / 2];
	})()`, pick)))
	tb.Do(t, b, "click it", chromedp.MouseClickXY(xy[0], xy[1]))
	to := tb.Get(t, b, "read the restore point", chromedp.Value("#r-to"))
	if want := time.Unix(pick, 0).UTC().Format(time.RFC3339); to != want {
		t.Fatalf("clicking second %d filled the restore point %q, want %q", pick, to, want)
	}
	tb.Do(t, b, "plan the restore",
		chromedp.SendKeys("#r-target", srv2.URI()),
		chromedp.SendKeys("#r-rename", strings.Join(renameLines, "\n")),
		chromedp.SendKeys("#r-ns", strings.Join(dbs, "\n")),
		chromedp.Click("#r-plan"),
		chromedp.WaitVisible("#plan"),
	)
	planText := tb.Get(t, b, "read the plan", chromedp.Text("#plan"))
	if !strings.Contains(planText, snapshotID) || !strings.Contains(planText, rename[dbs[0]]) {
		t.Fatalf("the plan does not name the snapshot and the targets:\n%s", planText)
	}
	tb.Do(t, b, "start the restore", chromedp.WaitEnabled("#r-start"), chromedp.Click("#r-start"))

	var state string
	waitFor(t, 3*time.Minute, "the restore job ends on the page", func() bool {
		state = tb.Get(t, b, "read the jobs", chromedp.Evaluate[string](`(() => {
			const r = document.querySelector('#jobs tr[data-job^="restore-"]');
			return r ? r.dataset.state : "";
		})()`))
		return state == api.StateSucceeded || state == api.StateFailed
	})
	row := tb.Get(t, b, "read the jobs", chromedp.Text("#jobs"))
	if state != api.StateSucceeded {
		t.Fatalf("the restore started from the dashboard ended %s:\n%s", state, row)
	}
	if err := oracle.Compare(ctx, srv2.Client(), quiet, oracle.Filter{Include: dbs, Rename: rename}); err != nil {
		t.Fatalf("the restore to %s started from the dashboard differs from the state then: %v", to, err)
	}
	tb.Screenshot(t, b, "dashboard.png")
}
