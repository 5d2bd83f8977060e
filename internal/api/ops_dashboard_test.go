package api_test

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	tb "github.com/rewind-backup/rewind/internal/testbrowser"
)

// A user opens the Operations view: the latest minute shows the bad
// delete as a bar of 5 deletes at its second; clicking it lists its
// operations; one's history shows the order as the snapshot held it,
// deleted, inserted again. "Restore to just before this" fills the
// restore form; "Undo this range" runs a dry run that says what would
// change and changes nothing, and once confirmed puts the deleted orders
// back, leaving order 7 (written again since) alone. A filtered,
// overwriting restore from the form then puts order 7 back too. Every
// request is the page's own, to the real endpoints.
func TestOperationsInBrowser(t *testing.T) {
	chromium := tb.Find(t)
	srv, db, _, c := liveOrders(t)
	orders := db + ".orders"
	bad := rt.EntryTS(1)

	b := tb.Start(t, chromium)
	tb.Do(t, b, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible("#token-box"))
	tb.Do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))
	bar := fmt.Sprintf(`#ops-bars rect.bar[data-t="%d"][data-ns="%s"]`, bad.T, orders)
	tb.Do(t, b, "see the latest minute's operations", chromedp.WaitReady(bar))
	title := tb.Get(t, b, "read the bar of the bad delete", chromedp.Evaluate[string](fmt.Sprintf(`document.querySelector(%q).textContent`, bar+" title")))
	if want := iso(bad.T) + "  " + orders + ": 5 deletes"; title != want {
		t.Fatalf("the bad delete's bar says %q, want %q", title, want)
	}
	if got := tb.Get(t, b, "check the moment", chromedp.Value("#o-at")); got != iso(rt.EntryTS(5).T-29) {
		t.Errorf("the moment defaults to %q, want %q: the latest minute", got, iso(rt.EntryTS(5).T-29))
	}

	tb.Do(t, b, "click the bar", chromedp.Click(bar), chromedp.WaitVisible("#o-entries"))
	rows := waitRows(t, b, "#o-list tbody tr", 5)
	for i, id := range badDelete {
		if want := fmt.Sprintf(`delete (in applyOps)%s{"$numberInt":"%d"}`, orders, id); !strings.Contains(rows[i], want) {
			t.Fatalf("operation %d of the bar: %q, want %q", i, rows[i], want)
		}
	}

	tb.Do(t, b, "open the history of order 7", chromedp.Click("#o-list tbody tr:nth-child(2) button.history"), chromedp.WaitVisible("#o-history"))
	versions := waitRows(t, b, "#o-versions tbody tr", 3)
	for i, want := range []string{`as the history starts`, `delete (in applyOps)deleted`, `insert`} {
		if !strings.Contains(versions[i], want) {
			t.Fatalf("version %d of order 7: %q, want %q", i, versions[i], want)
		}
	}
	if !strings.Contains(versions[0], `"o7"`) || !strings.Contains(versions[2], `"seven again"`) {
		t.Fatalf("the versions of order 7 do not show its documents: %q", versions)
	}
	picked := tb.Get(t, b, "read the version of the clicked operation", chromedp.Evaluate[string](`document.querySelector("#o-versions tr.picked").dataset.ts`))
	if picked != bad.String() {
		t.Errorf("the version marked is %s, want the delete's %s", picked, bad)
	}

	// Just before: the increment before, or the end of the previous second.
	jb := tb.Get(t, b, "compute points just before", chromedp.Evaluate[[]string](`[justBefore({t: 1795165211, i: 7}), justBefore({t: 1795165211, i: 1})]`))
	if jb[0] != "1795165211:6" || jb[1] != iso(1795165210) {
		t.Fatalf("justBefore gives %v, want 1795165211:6 and %s", jb, iso(1795165210))
	}
	tb.Do(t, b, "restore to just before the bar", chromedp.Click("#o-restore-bar"))
	if to, ns := tb.Get(t, b, "read the restore point", chromedp.Value("#r-to")), tb.Get(t, b, "read the namespaces", chromedp.Value("#r-ns")); to != iso(bad.T-1) || ns != orders {
		t.Fatalf("restore to just before the bar filled to %q ns %q, want %q and %q", to, ns, iso(bad.T-1), orders)
	}

	tb.Do(t, b, "give the target and undo the bar's range (a dry run first)",
		chromedp.SendKeys("#r-target", srv.URI()), chromedp.Click("#o-undo-bar"), chromedp.WaitVisible("#u-report"), chromedp.WaitEnabled("#u-run"))
	report := tb.Get(t, b, "read the dry run", chromedp.Text("#u-report"))
	for _, want := range []string{"dry run: nothing was changed", "5 documents changed by the range: 0 would be restored, 4 would be re-inserted",
		"1 conflicts left alone", `{"$numberInt":"3"}, {"$numberInt":"11"}`, `{"$numberInt":"7"}`} {
		if !strings.Contains(report, want) {
			t.Fatalf("the dry run's report does not say %q:\n%s", want, report)
		}
	}
	if got := ordersIn(t, srv, db); !maps.Equal(got, latestOrders()) {
		t.Fatalf("the dry run changed the orders: %v", got)
	}
	if label := tb.Get(t, b, "read the confirmation", chromedp.Text("#u-run")); !strings.HasPrefix(label, "Undo: write 4 documents into 127.0.0.1") {
		t.Errorf("the confirmation button says %q", label)
	}
	tb.Do(t, b, "confirm the undo", chromedp.Click("#u-run"))
	waitFor(t, time.Minute, "the undo's result on the page", func() bool {
		return strings.Contains(tb.Get(t, b, "read the result", chromedp.Text("#u-facts")), "undone")
	})
	want := latestOrders()
	for _, id := range []int32{3, 11, 15, 19} {
		want[id] = fmt.Sprintf("o%d", id)
	}
	if got := ordersIn(t, srv, db); !maps.Equal(got, want) {
		t.Fatalf("after the undo from the dashboard: %v, want %v", got, want)
	}

	tb.Do(t, b, "plan a filtered, overwriting restore of order 7",
		chromedp.SendKeys("#r-filter", `{"_id": 7}`), chromedp.SetValue("#r-merge", "overwrite"),
		chromedp.Click("#r-plan"), chromedp.WaitVisible("#plan"), chromedp.WaitEnabled("#r-start"))
	if plan := tb.Get(t, b, "read the plan", chromedp.Text("#plan")); !strings.Contains(plan, "overwrite") || !strings.Contains(plan, "a merge can write into") {
		t.Fatalf("the plan of the merge does not say so:\n%s", plan)
	}
	tb.Do(t, b, "start the restore", chromedp.Click("#r-start"))
	var states string
	waitFor(t, time.Minute, "the restore job ends on the page", func() bool {
		states = tb.Get(t, b, "read the jobs", chromedp.Evaluate[string](`[...document.querySelectorAll('#jobs tr[data-job^="restore-"]')].map((r) => r.dataset.state).join(" ")`))
		return states == "succeeded succeeded"
	})
	if jobs := tb.Get(t, b, "read the jobs", chromedp.Text("#jobs")); !strings.Contains(jobs, "0 inserted, 1 replaced, 0 left alone") ||
		!strings.Contains(jobs, "4 re-inserted") {
		t.Fatalf("the jobs do not report the undo and the merge:\n%s", jobs)
	}
	want[7] = "o7"
	if got := ordersIn(t, srv, db); !maps.Equal(got, want) {
		t.Fatalf("after the filtered restore from the dashboard: %v, want %v", got, want)
	}
	tb.Screenshot(t, b, "dashboard-operations.png")
}

// waitRows waits until the rows selected number n and returns their text.
func waitRows(t *testing.T, b context.Context, sel string, n int) []string {
	t.Helper()
	var rows []string
	waitFor(t, 30*time.Second, fmt.Sprintf("%d rows in %s", n, sel), func() bool {
		rows = tb.Get(t, b, "read "+sel, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelectorAll(%q)].map((r) => r.innerText.replaceAll("\t", ""))`, sel)))
		return len(rows) == n
	})
	return rows
}
