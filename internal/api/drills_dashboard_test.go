package api_test

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	tb "github.com/rewind-backup/rewind/internal/testbrowser"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The dashboard shows the drills recorded in the repository, newest first,
// with the summary of their verdicts (GET /api/v1/drills).
func TestDrillHistoryInBrowser(t *testing.T) {
	chromium := tb.Find(t)
	srv := testserver.Start(t)
	cfg := agentConfig(t, srv)
	ctx := t.Context()
	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	shard := src.Shard()
	must(t, src.Close(ctx))
	store, err := storage.Open(ctx, cfg.Repo)
	must(t, err)
	defer store.Close()
	r, err := repo.Open(ctx, store, repo.OpenOptions{Location: cfg.Repo})
	must(t, err)
	started := time.Now().Add(-time.Hour).Truncate(time.Second)
	for i, verdict := range []string{"exact", "failed"} {
		_, err := r.WriteDrillResult(ctx, repo.DrillResult{Shard: shard, Started: started.Add(time.Duration(i) * time.Minute),
			Point: optime.Timestamp{T: uint32(started.Unix()), I: 1}, Chosen: "random", Verdict: verdict, Against: "reference",
			Problem: map[string]string{"failed": "read object data/ab/cd: checksum mismatch"}[verdict], Seconds: 3, RTO: 120})
		must(t, err)
	}
	// Recorded before the agent started: its last-success metric starts
	// from the newest exact one, not from 0.
	c := startAgent(t, cfg)
	waitFor(t, 10*time.Second, "rewind_drill_last_success_timestamp_seconds seeded from the repository", func() bool {
		m := scrape(t, c)["rewind_drill_last_success_timestamp_seconds"]
		return m != nil && m.GetMetric()[0].GetGauge().GetValue() == float64(started.Add(3*time.Second).Unix())
	})

	b := tb.Start(t, chromium)
	tb.Do(t, b, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible("#token-box"))
	tb.Do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))
	tb.Do(t, b, "see the drills", chromedp.WaitReady(`#drills tbody tr[data-verdict="exact"]`))
	rows := tb.Get(t, b, "read the drills", chromedp.Evaluate[[]string](
		`[...document.querySelectorAll("#drills tbody tr")].map(tr => tr.textContent)`))
	if len(rows) != 2 || !strings.Contains(rows[0], "failed") || !strings.Contains(rows[0], "data/ab/cd") || !strings.Contains(rows[1], "exact") ||
		!strings.Contains(rows[1], "120 s/GB") {
		t.Fatalf("the drills table, newest first: %q", rows)
	}
	summary := tb.Get(t, b, "read the summary", chromedp.Evaluate[string](`document.getElementById("drill-summary").textContent`))
	if !strings.Contains(summary, "2 drills: 1 exact, 0 mismatch, 1 failed") || !strings.Contains(summary, "last exact") {
		t.Fatalf("the drills summary: %q", summary)
	}
}
