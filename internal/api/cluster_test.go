package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/storage"
	tb "github.com/rewind-backup/rewind/internal/testbrowser"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// clusterShards are the stand-in cluster's shards, in name order.
var clusterShards = []string{"alpha", "beta"}

// startClusterAgent runs an agent for a stand-in sharded cluster (as in
// internal/agent's cluster tests): test servers as shards alpha and beta,
// given as --shard NAME=URI, and one playing the config server, whose
// config.shards names them (--config-server). The agent creates the
// repository, recording the cluster, and takes its base cluster snapshot;
// shard alpha gets a workload, beta stays idle after a few writes. It returns the agent's
// client and the repository.
func startClusterAgent(t *testing.T) (*client, *repo.Repository) {
	t.Helper()
	cfgSrv := testserver.Start(t)
	if cfgSrv.External() {
		t.Skip("a stand-in cluster needs test servers of its own (one per shard); against $REWIND_TEST_MONGODB_URI every server would be the same deployment")
	}
	ctx := t.Context()
	cfg := agentConfig(t, cfgSrv)
	cfg.Repo = "file://" + filepath.Join(t.TempDir(), "cluster-repo") // created by agent.Prepare
	cfg.Source, cfg.ConfigServer = "", config.Secret(cfgSrv.URI())
	cfg.Snapshot.Every = config.Duration(24 * time.Hour) // the base cluster snapshot now, no other
	servers := map[string]*testserver.Server{}
	for _, n := range clusterShards {
		s := testserver.Start(t)
		servers[n] = s
		doc := bson.D{{Key: "_id", Value: n}, {Key: "host", Value: s.Host()}, {Key: "state", Value: 1}}
		if _, err := cfgSrv.Client().Database("config").Collection("shards").InsertOne(ctx, doc); err != nil {
			t.Fatalf("the test server refuses to hold config.shards: %v", err)
		}
		cfg.Shards = append(cfg.Shards, config.ShardSource{Name: n, URI: config.Secret(s.URI())})
	}
	// A fresh test server's oplog is empty, and a shard with no oplog entry
	// has no timeline for its window to run on (MongoDB's never is: it logs
	// a no-op every 10 s). Beta's then stays idle.
	runWorkload(t, servers["beta"], 30, 10, "cl", nil)
	_, err := agent.Prepare(ctx, cfg, "api test")
	must(t, err)
	c := startAgent(t, cfg)
	runWorkload(t, servers["alpha"], 31, 80, "cl", nil)

	store, err := storage.Open(ctx, cfg.Repo)
	must(t, err)
	t.Cleanup(func() { store.Close() })
	r, err := repo.Open(ctx, store, repo.OpenOptions{Location: cfg.Repo})
	must(t, err)
	return c, r
}

// waitClusterTimeline waits until GET /api/v1/timeline shows a cluster
// window and a window on every data shard.
func waitClusterTimeline(t *testing.T, c *client) api.TimelineView {
	t.Helper()
	var tl api.TimelineView
	waitFor(t, 60*time.Second, "the timeline shows a cluster window", func() bool {
		tl = api.TimelineView{}
		c.get("/api/v1/timeline", &tl)
		if len(tl.Windows) == 0 || len(tl.Shards) == 0 {
			return false
		}
		for _, sh := range tl.Shards {
			if !sh.ConfigServer && len(sh.Windows) == 0 {
				return false
			}
		}
		return true
	})
	return tl
}

// GET /api/v1/timeline for a sharded cluster: the top-level windows and
// span are the cluster's (catalog.ClusterWindows: where every shard can be
// restored), and each shard has its own entry with its own windows (as
// `rewind list --json` shows them), timelines, snapshots and
// covered-through time; the config server's is marked.
func TestTimelineOfACluster(t *testing.T) {
	c, r := startClusterAgent(t)
	waitClusterTimeline(t, c)

	// The agent keeps writing heartbeats (the windows' ends move): compare
	// with a catalog that did not change across the request.
	var tl api.TimelineView
	var cat catalog.Catalog
	waitFor(t, 30*time.Second, "a catalog unchanged across one GET /api/v1/timeline", func() bool {
		before, err := catalog.Load(context.Background(), r)
		must(t, err)
		tl = api.TimelineView{}
		c.get("/api/v1/timeline", &tl)
		after, err := catalog.Load(context.Background(), r)
		must(t, err)
		cat = after
		return reflect.DeepEqual(status.ListShards(before), status.ListShards(after))
	})
	if !tl.Cluster || tl.Shard != strings.Join(clusterShards, ",") {
		t.Fatalf("timeline: cluster %v, shard %q; want a cluster of %v", tl.Cluster, tl.Shard, clusterShards)
	}
	want := status.Windows(cat.ClusterWindows())
	if len(want) == 0 || !reflect.DeepEqual(tl.Windows, want) || !reflect.DeepEqual(tl.Span, want) {
		t.Fatalf("timeline windows %s, span %s; want the cluster windows %s", js(tl.Windows), js(tl.Span), js(want))
	}
	var names []string
	for _, sh := range tl.Shards {
		names = append(names, sh.Shard)
		cs, ok := cat.Shard(sh.Shard)
		if !ok {
			t.Fatalf("timeline shard %q: the repository has no such shard", sh.Shard)
		}
		if wantW := status.Windows(cs.Reach()); !reflect.DeepEqual(sh.Windows, wantW) {
			t.Errorf("shard %s: windows %s, want %s", sh.Shard, js(sh.Windows), js(wantW))
		}
		if wantS := status.Windows(catalog.Shard{Windows: cs.Reach()}.Span()); !reflect.DeepEqual(sh.Span, wantS) {
			t.Errorf("shard %s: span %s, want %s", sh.Shard, js(sh.Span), js(wantS))
		}
		if sh.ConfigServer != (sh.Shard == "config") {
			t.Errorf("shard %s: config_server %v", sh.Shard, sh.ConfigServer)
		}
		if len(sh.Timelines) == 0 || len(sh.Snapshots) == 0 || sh.CoveredThrough == nil {
			t.Errorf("shard %s: %d timelines, %d snapshots, covered through %v; want its capture and its part of the cluster snapshot",
				sh.Shard, len(sh.Timelines), len(sh.Snapshots), sh.CoveredThrough)
		}
	}
	if got, want := strings.Join(names, ","), "alpha,beta,config"; got != want {
		t.Fatalf("timeline shards %s, want %s", got, want)
	}
	// Each cluster window lies inside every data shard's span; the top
	// level holds no shard's timelines, gaps or snapshots.
	for _, sh := range tl.Shards {
		if !sh.ConfigServer && !inside(want[len(want)-1], sh.Span) {
			t.Errorf("the last cluster window %s is not inside shard %s's span %s", js(want[len(want)-1]), sh.Shard, js(sh.Span))
		}
	}
	if len(tl.Timelines)+len(tl.Gaps)+len(tl.Snapshots) != 0 {
		t.Errorf("top level: %d timelines, %d gaps, %d snapshots; want them under shards", len(tl.Timelines), len(tl.Gaps), len(tl.Snapshots))
	}
}

// inside reports whether w lies inside one window of span.
func inside(w api.Window, span []api.Window) bool {
	return slices.ContainsFunc(span, func(s api.Window) bool {
		return !tsBefore(w.From, s.From) && !tsBefore(s.To, w.To)
	})
}

// js shows a value as JSON, for failure messages.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func tsBefore(a, b *api.TS) bool { return a.T < b.T || a.T == b.T && a.I < b.I }

// The dashboard of a cluster's agent draws the cluster's windows in the
// top row and, under it, one row per shard named after it (the config
// server's marked); clicking a second in the cluster's window plans a
// cluster restore to it. The screenshot goes to docs/ when
// REWIND_UPDATE_DOCS=1.
func TestClusterDashboardInBrowser(t *testing.T) {
	chromium := tb.Find(t)
	c, _ := startClusterAgent(t)
	tl := waitClusterTimeline(t, c)

	b := tb.Start(t, chromium)
	tb.Do(t, b, "open the dashboard", chromedp.Navigate(c.base+"/"), chromedp.WaitVisible("#token-box"))
	tb.Do(t, b, "give the token", chromedp.SendKeys("#token", token), chromedp.Click("#token-form button"))
	tb.Do(t, b, "see the timeline", chromedp.WaitReady(`#timeline rect.window`), chromedp.WaitNotVisible("#token-box"))
	if st := tb.Get(t, b, "read the capture state", chromedp.Text("#st-state")); st != "capturing" {
		t.Errorf("the cluster agent's capture state reads %q, want capturing", st)
	}
	// Each row: its name, its label's top and its marks' top and bottom
	// on the page.
	type row struct {
		Name, Label        string
		LabelTop, Top, Bot float64
		Windows            int
	}
	rows := tb.Get(t, b, "read the rows", chromedp.Evaluate[[]row](`(() => {
		const box = (els) => { const r = els.map((e) => e.getBoundingClientRect()); return r.length ?
			[Math.min(...r.map((x) => x.top)), Math.max(...r.map((x) => x.bottom))] : [0, 0]; };
		const row = (name, marks, windows) => {
			const l = document.querySelector('#row-labels [data-row="' + name + '"]'), b = box(marks);
			return {Name: name, Label: l ? l.textContent : "", LabelTop: l ? l.getBoundingClientRect().top : -1,
				Top: b[0], Bot: b[1], Windows: windows};
		};
		const top = [...document.querySelectorAll("#timeline > rect.window")];
		const out = [row("cluster", top, top.length)];
		for (const g of document.querySelectorAll("#timeline g.shard-row"))
			out.push(row(g.dataset.shard, [...g.querySelectorAll("rect:not(.row-rule)")], g.querySelectorAll("rect.window").length));
		return out;
	})()`))
	var names []string
	for i, r := range rows {
		names = append(names, r.Name)
		if !strings.HasPrefix(r.Label, r.Name) {
			t.Errorf("row %s is labelled %q", r.Name, r.Label)
		}
		if i > 0 && (r.Top < rows[i-1].Bot || r.LabelTop < rows[i-1].LabelTop) {
			t.Errorf("row %s (label at %.0f, marks %.0f..%.0f) is not under row %s (label at %.0f, marks %.0f..%.0f)",
				r.Name, r.LabelTop, r.Top, r.Bot, rows[i-1].Name, rows[i-1].LabelTop, rows[i-1].Top, rows[i-1].Bot)
		}
		if r.Name != "config" && r.Windows == 0 {
			t.Errorf("row %s draws no window", r.Name)
		}
	}
	if got := strings.Join(names, ","); got != "cluster,alpha,beta,config" {
		t.Fatalf("timeline rows %s, want the cluster's, then alpha, beta and config", got)
	}
	if !strings.Contains(rows[3].Label, "config server") {
		t.Errorf("the config server's row is labelled %q; want it marked", rows[3].Label)
	}

	if table := tb.Get(t, b, "read the windows table", chromedp.Text("#windows tbody")); !strings.Contains(table, tl.Windows[0].From.Time) ||
		!strings.Contains(table, "each shard's own") {
		t.Errorf("the windows table does not list the cluster window from %s, each shard from its own snapshot:\n%s", tl.Windows[0].From.Time, table)
	}
	// Click the middle of the last cluster window: the plan is the
	// cluster's, to that second.
	w := tl.Windows[len(tl.Windows)-1]
	pick := int64(w.From.T+w.To.T) / 2
	xy := tb.Get(t, b, "find the point on the timeline", chromedp.Evaluate[[]float64](fmt.Sprintf(`(() => {
		const b = document.getElementById("timeline").getBoundingClientRect(), d = state.domain;
		return [b.left + (%d + 0.5 - d[0]) / (d[1] - d[0]) * b.width, b.top + 50];
	})()`, pick)))
	tb.Do(t, b, "click it", chromedp.MouseClickXY(xy[0], xy[1]))
	to := tb.Get(t, b, "read the restore point", chromedp.Value("#r-to"))
	if to == "" {
		t.Fatalf("clicking second %d of the cluster window %s chose no restore point", pick, js(w))
	}
	tb.Do(t, b, "plan the restore", chromedp.Click("#r-plan"), chromedp.WaitVisible("#plan"))
	plan := tb.Get(t, b, "read the plan", chromedp.Text("#plan-facts"))
	if !strings.Contains(plan, "restore to") || !strings.Contains(plan, time.Unix(pick, 0).UTC().Format(time.RFC3339)) {
		t.Fatalf("the plan of second %d (restore point %q) does not restore to it:\n%s", pick, to, plan)
	}
	tb.Screenshot(t, b, "dashboard-cluster.png")
}
