package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// Repository writes fail while the source is written to: capture_lag and
// storage_errors fire, once each, and resolve, once each, when storage
// comes back; GET /api/v1/alerts and rewind_alerts_firing show them.
func TestAlertsLagAndStorageErrors(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	hook := newAlertReceiver(t)
	cfg := alertConfig(t, srv, url, hook)
	cfg.Alerts.LagAbove = config.Duration(time.Second)
	cfg.Alerts.StorageErrorsFor = config.Duration(time.Second)
	a := startAgent(t, cfg)
	runWorkload(t, srv, 30, 50, "a")
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, newestOplogTS(t, srv.Client()), 30*time.Second)

	repair := breakRepoDir(t, url, "oplog")
	w := srv.Workload(31)
	w.Prefix, w.Duration, w.Rate = srv.DB("b"), 3*time.Second, 30
	if _, err := workload.Run(context.Background(), srv.Client(), w, nil); err != nil {
		t.Fatalf("workload while storage fails: %v", err)
	}
	hook.wait(t, alert.CaptureLag, alert.Firing)
	hook.wait(t, alert.StorageErrors, alert.Firing)
	view := getAlerts(t, a)
	if !hasAlert(view.Firing, alert.CaptureLag) || !hasAlert(view.Firing, alert.StorageErrors) {
		t.Fatalf("GET /api/v1/alerts firing = %+v, want capture_lag and storage_errors", view.Firing)
	}
	if v := alertsFiring(t, a)[alert.CaptureLag]; v != 1 {
		t.Fatalf("rewind_alerts_firing{alert=capture_lag} = %v while it fires", v)
	}

	repair()
	hook.wait(t, alert.CaptureLag, alert.Resolved)
	hook.wait(t, alert.StorageErrors, alert.Resolved)
	waitChecks(t, a, 3) // a repeat, if one were sent, comes with a check
	hook.assertOnce(t, alert.CaptureLag, alert.StorageErrors)
	lag := hook.first(alert.CaptureLag, alert.Firing)
	if d, _ := lag.Details["lag_seconds"].(float64); d <= 1 || lag.Shard == "" || lag.SourceHost == "" || lag.Agent.PID != os.Getpid() {
		t.Fatalf("capture_lag event = %+v", lag)
	}
	if v := alertsFiring(t, a)[alert.CaptureLag]; v != 0 {
		t.Fatalf("rewind_alerts_firing{alert=capture_lag} = %v after it resolved", v)
	}
	// The source's oplog holds seconds of history, far below the 12 h
	// threshold, but while it has room left nothing was lost: no alert.
	var st struct {
		Size    int64 `bson:"size"`
		MaxSize int64 `bson:"maxSize"`
	}
	if err := srv.Client().Database("local").RunCommand(t.Context(), bson.D{{Key: "collStats", Value: "oplog.rs"}}).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if filling := st.MaxSize > 0 && st.Size < st.MaxSize/10*9; filling {
		if ev := hook.first(alert.OplogWindow, alert.Firing); ev != nil {
			t.Fatalf("oplog_window fired while the oplog is %d of %d bytes: %+v", st.Size, st.MaxSize, ev)
		}
	}
}

// The oplog rolls past the agent while it is down, and snapshots cannot be
// written: gap and snapshot_failed fire. Once storage takes snapshots
// again, the scheduled snapshot after the gap resolves both, and the
// snapshot metrics count the scheduled snapshots.
func TestAlertsGapAndSnapshotFailed(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("rollover cannot be simulated on an external replica set")
	}
	url := newRepo(t)
	hook := newAlertReceiver(t)
	a := startAgent(t, agentConfig(t, srv, url))
	runWorkload(t, srv, 40, 60, "a")
	resume := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, resume, 30*time.Second)
	must(t, a.stop(t))
	runWorkload(t, srv, 41, 100, "b")
	firstKept := rollOver(t, srv, resume, 20)

	repair := breakRepoDir(t, url, "data")
	cfg := alertConfig(t, srv, url, hook)
	cfg.Snapshot.Every = config.Duration(2 * time.Second) // also the retry delay of a failed one
	b := startAgent(t, cfg)
	gap := hook.wait(t, alert.Gap, alert.Firing)
	if got, _ := gap.Details["lost_to"].(float64); uint32(got) != firstKept.T || gap.Severity != alert.Critical {
		t.Fatalf("gap event = %+v, want lost_to %d", gap, firstKept.T)
	}
	hook.wait(t, alert.SnapshotFailed, alert.Firing)

	repair()
	hook.wait(t, alert.SnapshotFailed, alert.Resolved)
	hook.wait(t, alert.Gap, alert.Resolved)
	hook.assertOnce(t, alert.Gap, alert.SnapshotFailed)

	// The alert resolves once the good snapshot's manifest is stored; the
	// run is recorded in the metrics just after: wait for it.
	fams := scrapeAgent(t, b)
	waitFor(t, 30*time.Second, "the good snapshot in the metrics", func() bool {
		fams = scrapeAgent(t, b)
		return fams["rewind_snapshot_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount() >= 2
	})
	h := fams["rewind_snapshot_duration_seconds"].GetMetric()[0].GetHistogram()
	fails := fams["rewind_snapshot_failures_total"].GetMetric()[0].GetCounter().GetValue()
	last := fams["rewind_last_snapshot_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue()
	if h.GetSampleCount() < 2 || fails < 1 || last < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("scheduled snapshots in the metrics: %d observed, %v failed, last at %v; want the failed and the good one",
			h.GetSampleCount(), fails, last)
	}
}

// A reader holding the repository (a restore) keeps prune from running:
// that only postpones it, until it has lasted a whole prune interval; then
// prune_failed fires, and resolves once the reader is gone and prune runs.
func TestAlertsPruneBlockedByReader(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	hook := newAlertReceiver(t)
	cfg := alertConfig(t, srv, url, hook)
	// Something to prune: two old snapshots (the newest always stays), and
	// no snapshot of the agent's own, whose shared lock would block prune too.
	cfg.Retention.PruneInterval = config.Duration(time.Second)
	cfg.Retention.RestoreWindow = config.Duration(time.Second)
	cfg.Retention.Hourly, cfg.Retention.Daily, cfg.Retention.Weekly, cfg.Retention.Monthly = 0, 0, 0, 0
	cfg.Snapshot.Every = 0
	runWorkload(t, srv, 50, 30, "a")

	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{Location: url})
	must(t, err)
	for _, days := range []int{30, 20} {
		writeOldSnapshot(t, r, days)
	}
	reader, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "restore"})
	must(t, err)
	a := startAgent(t, cfg)
	blocked := time.Now()
	ev := hook.wait(t, alert.PruneFailed, alert.Firing)
	if held := time.Since(blocked); held < time.Second {
		t.Fatalf("prune_failed fired %s after a reader locked the repository, before a whole prune interval", held)
	}
	if !strings.Contains(ev.Summary, "restore") {
		t.Fatalf("prune_failed does not name the reader: %q", ev.Summary)
	}
	must(t, reader.Unlock(ctx))
	hook.wait(t, alert.PruneFailed, alert.Resolved)
	waitChecks(t, a, 3)
	hook.assertOnce(t, alert.PruneFailed)
}

// alertConfig is an agent that checks alerts often, sends them to hook,
// and serves reads without a token; thresholds not set are off.
func alertConfig(t *testing.T, srv *testserver.Server, url string, hook *alertReceiver) config.Config {
	cfg := agentConfig(t, srv, url)
	cfg.API.PublicRead = true
	cfg.Alerts = config.Alerts{CheckInterval: config.Duration(100 * time.Millisecond),
		Webhooks: []config.Webhook{{URL: config.WebhookURL(hook.URL + "/rewind")}}}
	return cfg
}

// breakRepoDir makes writes under the repository's top-level dir/<shard>/
// fail (a file stands where the directory goes: chmod would not stop
// root) and returns the function that repairs it.
func breakRepoDir(t *testing.T, url, dir string) func() {
	t.Helper()
	root := strings.TrimPrefix(url, "file://")
	p := filepath.Join(root, dir, waitShard(t, root))
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	_, statErr := os.Stat(p)
	existed := statErr == nil
	if existed {
		must(t, os.Rename(p, p+".away"))
	}
	must(t, os.WriteFile(p, nil, 0o600))
	return func() {
		must(t, os.Remove(p))
		if existed {
			must(t, os.Rename(p+".away", p))
		}
	}
}

// waitShard is the repository's one shard, named by the agent's heartbeat
// object (heartbeats/<shard>), written at start.
func waitShard(t *testing.T, root string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		shards, err := os.ReadDir(filepath.Join(root, "heartbeats"))
		if err == nil && len(shards) == 1 {
			return shards[0].Name()
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat in %s after 30 s: %v", root, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// alertReceiver is the operator's webhook endpoint.
type alertReceiver struct {
	*httptest.Server
	mu     sync.Mutex
	events []alert.Event
}

func newAlertReceiver(t *testing.T) *alertReceiver {
	r := &alertReceiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var ev alert.Event
		if err := json.NewDecoder(req.Body).Decode(&ev); err != nil {
			t.Errorf("webhook body: %v", err)
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		r.events = append(r.events, ev)
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *alertReceiver) first(name, state string) *alert.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range r.events {
		if ev.Alert == name && ev.State == state {
			return &ev
		}
	}
	return nil
}

// wait waits up to 60 s for the event.
func (r *alertReceiver) wait(t *testing.T, name, state string) *alert.Event {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if ev := r.first(name, state); ev != nil {
			return ev
		}
		if time.Now().After(deadline) {
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("the webhook got no %s %s within 60 s; it got %+v", name, state, r.events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertOnce checks each alert fired exactly once, then resolved exactly once.
func (r *alertReceiver) assertOnce(t *testing.T, names ...string) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range names {
		var states []string
		for _, ev := range r.events {
			if ev.Alert == name {
				states = append(states, ev.State)
			}
		}
		if strings.Join(states, ",") != "firing,resolved" {
			t.Errorf("%s events: %v, want firing then resolved, once each", name, states)
		}
	}
}

func hasAlert(evs []alert.Event, name string) bool {
	for _, ev := range evs {
		if ev.Alert == name {
			return true
		}
	}
	return false
}

func getAlerts(t *testing.T, a *runningAgent) alert.View {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr(t, a) + "/api/v1/alerts")
	must(t, err)
	defer resp.Body.Close()
	var env struct {
		OK   bool       `json:"ok"`
		Data alert.View `json:"data"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&env))
	if !env.OK || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/alerts: %d %+v", resp.StatusCode, env)
	}
	return env.Data
}

func apiAddr(t *testing.T, a *runningAgent) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for a.APIAddr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the agent's API does not listen after 30 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return a.APIAddr()
}

func scrapeAgent(t *testing.T, a *runningAgent) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr(t, a) + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// alertsFiring reads rewind_alerts_firing by alert name.
func alertsFiring(t *testing.T, a *runningAgent) map[string]float64 {
	out := map[string]float64{}
	for _, m := range scrapeAgent(t, a)["rewind_alerts_firing"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "alert" {
				out[l.GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	if len(out) != len(alert.Names) {
		t.Fatalf("rewind_alerts_firing has %d alerts, want %d", len(out), len(alert.Names))
	}
	return out
}

// waitChecks waits until the agent's alert monitor has evaluated every
// alert n more times (GET /api/v1/alerts counts them), and the webhook
// deliveries of those checks have had their chance.
func waitChecks(t *testing.T, a *runningAgent, n uint64) {
	t.Helper()
	from := getAlerts(t, a).Checks
	deadline := time.Now().Add(30 * time.Second)
	for getAlerts(t, a).Checks < from+n {
		if time.Now().After(deadline) {
			t.Fatalf("the alert monitor did not check %d more times within 30 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
