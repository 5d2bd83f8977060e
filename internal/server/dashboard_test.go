package server_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/server"
	tb "github.com/rewind-backup/rewind/internal/testbrowser"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The unreachable sources of the test: a file deployment's, and a wrong
// one typed into the form. Their passwords must never reach the page.
const (
	deadSource = "mongodb://backup:pw-file@127.0.0.1:1/?serverSelectionTimeoutMS=1500"
	badSource  = "mongodb://backup:pw-typed@127.0.0.1:1/?serverSelectionTimeoutMS=1500"
)

// A user opens rewind server's home page, gives the token once, and sees
// its deployments trouble first (one whose source does not answer, with
// why); sorts them by a column and back; enables backup of a third
// deployment with the form (a wrong connection string is refused with the
// server's message and nothing added, the right one appears and
// captures); opens a deployment's own page, whose status, timeline and
// jobs come from that deployment's API under the server; goes back, and
// removes the deployment it added (its repository is kept). The
// screenshot goes to docs/dashboard-fleet.png when REWIND_UPDATE_DOCS=1.
func TestFleetDashboardInBrowser(t *testing.T) {
	chromium := tb.Find(t)
	alpha, delta := testserver.Start(t), testserver.Start(t)
	dir := t.TempDir()
	f := startFleet(t, `api: {listen: "127.0.0.1:0", token: `+token+`}
state_dir: `+filepath.Join(dir, "state")+`
repo_prefix: file://`+filepath.Join(dir, "repos")+`
lock: {refresh: 1s, stale_after: 3s}
capture: {flush_interval: 200ms, spool_dir: `+filepath.Join(dir, "spool")+`}
alerts: {check_interval: 500ms, source_unreachable_for: 2s}
deployments:
  - {name: alpha, source: '`+alpha.URI()+`'}
  - {name: omega, source: '`+deadSource+`'}
`)
	base := "http://" + f.s.Addr()
	f.waitCapturing(90*time.Second, "alpha")
	waitFor(t, 90*time.Second, "omega fails", func() bool { return f.list()["omega"].State == server.StateFailed })

	b := tb.Start(t, chromium)
	tb.Do(t, b, "open the home page", chromedp.Navigate(base+"/"), chromedp.WaitVisible("#token-box"))
	tb.Do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"),
		chromedp.WaitVisible(`#deployments tr[data-name="omega"][data-state="failed"]`), chromedp.WaitNotVisible("#token-box"))

	// Trouble first, saying why; the healthy one captured by this process.
	wantOrder(t, b, "trouble first", "omega", "alpha")
	omega := tb.Get(t, b, "read omega's row", chromedp.Text(`#deployments tr[data-name="omega"]`))
	if e := f.list()["omega"].Error; e == "" || !strings.Contains(omega, firstLine(e)) {
		t.Errorf("omega's row does not say why it failed (%q):\n%s", e, omega)
	}
	alphaRow := tb.Get(t, b, "read alpha's row", chromedp.Text(`#deployments tr[data-name="alpha"]`))
	if !strings.Contains(alphaRow, "capturing") || !strings.Contains(alphaRow, "this process") {
		t.Errorf("alpha's row does not say it is captured by this process:\n%s", alphaRow)
	}
	if n := tb.Get(t, b, "count Remove buttons", chromedp.Evaluate[int](`document.querySelectorAll("#deployments button.remove").length`)); n != 0 {
		t.Errorf("file deployments show %d Remove buttons", n)
	}

	// Sorting: by name, by lag (omega has none: last), back to trouble.
	tb.Do(t, b, "sort by name", chromedp.Click(`button.sort[data-sort="name"]`))
	wantOrder(t, b, "by name", "alpha", "omega")
	tb.Do(t, b, "sort by name, descending", chromedp.Click(`button.sort[data-sort="name"]`))
	wantOrder(t, b, "by name, descending", "omega", "alpha")
	tb.Do(t, b, "sort by lag", chromedp.Click(`button.sort[data-sort="lag"]`))
	wantOrder(t, b, "by lag", "alpha", "omega")
	tb.Do(t, b, "sort trouble first", chromedp.Click("#sort-trouble"))
	wantOrder(t, b, "trouble first again", "omega", "alpha")

	enableForm(t, b, f, delta, dir)
	for name, srv := range map[string]*testserver.Server{"alpha": alpha, "delta": delta} {
		insert(t, f, name, srv)
	}
	deploymentPage(t, b)

	tb.Do(t, b, "go back to all deployments", chromedp.Click("#fleet-link"),
		chromedp.WaitVisible(`#deployments tr[data-name="delta"]`))
	wantOrder(t, b, "three deployments, trouble first", "omega", "alpha", "delta")
	waitFor(t, 30*time.Second, "the page shows what alpha and delta captured", func() bool {
		return tb.Get(t, b, "read the last durable times", chromedp.Evaluate[bool](
			`[...document.querySelectorAll('#deployments tr[data-state="capturing"] td:nth-child(4)')].every((td) => td.textContent.endsWith("UTC"))`))
	})
	noSecrets(t, b)
	tb.Screenshot(t, b, "dashboard-fleet.png")

	// Remove, confirmed: the row goes, the repository stays.
	dialogs := chromedp.Events(b, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			if !strings.Contains(ev.Message, "delta") || !strings.Contains(ev.Message, "kept") {
				t.Errorf("the confirmation does not name delta and say its backups are kept: %q", ev.Message)
			}
			_, _ = chromedp.Call(b, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	tb.Do(t, b, "remove delta", chromedp.Click(`#deployments tr[data-name="delta"] button.remove`),
		chromedp.WaitNotPresent(`#deployments tr[data-name="delta"]`))
	if _, ok := f.list()["delta"]; ok {
		t.Error("delta is still listed after Remove")
	}
	if _, err := os.Stat(filepath.Join(dir, "repos", "delta", "config")); err != nil {
		t.Errorf("Remove lost delta's repository: %v", err)
	}
}

// enableForm enables backup of delta with the form: first with a source
// that does not answer (refused, nothing added), then with its own.
func enableForm(t *testing.T, b context.Context, f *fleet, delta *testserver.Server, dir string) {
	t.Helper()
	tb.Do(t, b, "type the name", chromedp.SendKeys("#e-name", "delta"))
	placeholder := tb.Get(t, b, "read the repository's placeholder", chromedp.Evaluate[string](`document.getElementById("e-repo").placeholder`))
	if want := "file://" + filepath.Join(dir, "repos", "delta"); placeholder != want {
		t.Errorf("the repository's placeholder is %q, want %q (repo_prefix/NAME)", placeholder, want)
	}
	tb.Do(t, b, "submit a source that does not answer",
		chromedp.SendKeys("#e-source", badSource), chromedp.SendKeys("#e-every", "12h"), chromedp.SendKeys("#e-window", "3d"),
		chromedp.Click("#e-submit"), chromedp.WaitVisible("#e-error"))
	msg := tb.Get(t, b, "read the error", chromedp.Text("#e-error"))
	if !strings.Contains(msg, "nothing was saved") || !strings.Contains(msg, "delta") {
		t.Errorf("the form's error does not say what failed and that nothing was saved: %q", msg)
	}
	noSecrets(t, b)
	if _, ok := f.list()["delta"]; ok {
		t.Fatal("a deployment refused by the server was added")
	}
	if _, err := os.Stat(filepath.Join(dir, "repos", "delta")); err == nil {
		t.Error("a refused deployment created its repository")
	}

	tb.Do(t, b, "submit its own source", chromedp.Evaluate[chromedp.Void](`document.getElementById("e-source").value = ""`), chromedp.SendKeys("#e-source", delta.URI()),
		chromedp.Click("#e-submit"), chromedp.WaitVisible(`#deployments tr[data-name="delta"]`))
	if v := tb.Get(t, b, "read the form", chromedp.Value("#e-source")); v != "" {
		t.Errorf("the connection string stays in the form after it was saved: %q", v)
	}
	if e := tb.Get(t, b, "read the error", chromedp.Evaluate[bool](`document.getElementById("e-error").hidden`)); !e {
		t.Error("the error of the refused attempt is still shown")
	}
	waitFor(t, 90*time.Second, "the page shows delta capturing with a restore window", func() bool {
		return tb.Get(t, b, "read delta's row", chromedp.Evaluate[bool](
			`!!document.querySelector('#deployments tr[data-name="delta"][data-state="capturing"]:not(.trouble)')`))
	})
	v := f.list()["delta"]
	if v.Origin != server.OriginAPI || v.Settings.SnapshotEvery != "12h" || v.Settings.RestoreWindow != "3d" ||
		v.Repo != "file://"+filepath.Join(dir, "repos", "delta") {
		t.Errorf("delta as the form enabled it: origin %s, settings %+v, repo %s", v.Origin, v.Settings, v.Repo)
	}
}

// deploymentPage opens alpha's own page from its row: the agent's page,
// reading alpha's API under the server; a snapshot started there runs.
func deploymentPage(t *testing.T, b context.Context) {
	t.Helper()
	tb.Do(t, b, "open alpha's page", chromedp.Click(`#deployments tr[data-name="alpha"] a`),
		chromedp.WaitVisible("#fleet-link"), chromedp.WaitReady(`#timeline rect.window`))
	loc := tb.Get(t, b, "read the address", chromedp.Location())
	name := tb.Get(t, b, "read the header", chromedp.Text("#deployment"))
	state := tb.Get(t, b, "read the state", chromedp.Text("#st-state"))
	if !strings.HasSuffix(loc, "/deployments/alpha/") || name != "alpha" || state != "capturing" {
		t.Errorf("alpha's page: at %s, header %q, state %q", loc, name, state)
	}
	tb.Do(t, b, "take a snapshot", chromedp.Click("#snapshot-now"), chromedp.WaitReady(`#jobs tr[data-job^="snapshot"]`))
	var st string
	waitFor(t, 2*time.Minute, "the snapshot job ends on alpha's page", func() bool {
		st = tb.Get(t, b, "read the jobs", chromedp.Evaluate[string](
			`document.querySelector('#jobs tr[data-job^="snapshot"]').dataset.state`))
		return st != "running"
	})
	if st != "succeeded" {
		t.Errorf("the snapshot started on alpha's page ended %s:\n%s", st, tb.Get(t, b, "read the jobs", chromedp.Text("#jobs")))
	}
}

// insert writes documents to the source of deployment name, and waits
// until it has captured them.
func insert(t *testing.T, f *fleet, name string, srv *testserver.Server) {
	t.Helper()
	docs := make([]any, 200)
	for i := range docs {
		docs[i] = bson.D{{Key: "_id", Value: i}, {Key: "item", Value: strings.Repeat("x", 100)}}
	}
	_, err := srv.Client().Database(srv.DB("dash")).Collection("orders").InsertMany(t.Context(), docs)
	must(t, err)
	last, err := oracle.LastOplogTS(t.Context(), srv.Client())
	must(t, err)
	waitFor(t, 60*time.Second, name+" captures the inserts", func() bool { return f.durable(name, last) })
}

// wantOrder waits for the table's rows to be names, in that order.
func wantOrder(t *testing.T, b context.Context, what string, names ...string) {
	t.Helper()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		got = tb.Get(t, b, "read the rows", chromedp.Evaluate[[]string](
			`[...document.querySelectorAll("#deployments tbody tr")].map((r) => r.dataset.name)`))
		if slices.Equal(got, names) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !slices.Equal(got, names) {
		t.Errorf("%s: the rows are %v, want %v", what, got, names)
	}
}

// noSecrets fails when the page shows a password of the test's sources.
func noSecrets(t *testing.T, b context.Context) {
	t.Helper()
	text := tb.Get(t, b, "read the page", chromedp.Evaluate[string](`document.documentElement.outerHTML + document.body.innerText`))
	for _, pw := range []string{"pw-file", "pw-typed"} {
		if strings.Contains(text, pw) {
			t.Errorf("the page shows the password %s", pw)
		}
	}
}

func firstLine(s string) string { return strings.SplitN(s, ";", 2)[0] }

// The pages and assets of the server's dashboard are served without a
// token, with the dashboard's content security policy.
func TestFleetDashboardAssets(t *testing.T) {
	f := startFleet(t, header(t.TempDir()))
	for path, want := range map[string]string{"/": "Enable backup", "/deployments/any/": "Restore points",
		"/ui/common.js": "initToken", "/ui/fleet.js": "/api/v1/deployments"} {
		resp, err := http.Get("http://" + f.s.Addr() + path)
		must(t, err)
		raw, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		must(t, err)
		body := string(raw)
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, want) ||
			!strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'self'") {
			t.Errorf("GET %s: %d, CSP %q, body without %q", path, resp.StatusCode, resp.Header.Get("Content-Security-Policy"), want)
		}
	}
	if a := f.do("GET", "/deployments/any/x", ""); a.Status != http.StatusNotFound {
		t.Errorf("GET /deployments/any/x: %d, want 404", a.Status)
	}
}
