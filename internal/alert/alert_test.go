package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
	"github.com/rewind-backup/rewind/internal/storage"
)

func cond(active bool) []Condition {
	return []Condition{{Alert: CaptureLag, Active: active, Severity: Warning, Summary: "lag"}}
}

// An alert fires once when its condition starts, stays quiet while it
// holds, resolves once, and can fire again later.
func TestTrackerFiresOnceResolvesOnce(t *testing.T) {
	tr := newTracker(10)
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	base := Event{Shard: "rs0"}
	steps := []struct {
		active *bool
		want   string
	}{
		{ptr(false), ""}, {ptr(true), Firing}, {ptr(true), ""}, {nil, ""}, {ptr(true), ""},
		{ptr(false), Resolved}, {ptr(false), ""}, {ptr(true), Firing},
	}
	for i, s := range steps {
		var conds []Condition
		if s.active != nil {
			conds = cond(*s.active)
		}
		evs := tr.update(t0.Add(time.Duration(i)*time.Second), base, conds)
		want := 0
		if s.want != "" {
			want = 1
		}
		if len(evs) != want || (want == 1 && evs[0].State != s.want) {
			t.Fatalf("step %d: events %+v, want %q", i, evs, s.want)
		}
		for _, ev := range evs {
			if ev.Shard != "rs0" || ev.Alert != CaptureLag {
				t.Fatalf("event lost its fields: %+v", ev)
			}
		}
	}
	v := tr.view()
	if v.Checks != uint64(len(steps)) || v.CheckedAt == nil || !v.CheckedAt.Equal(t0.Add(time.Duration(len(steps)-1)*time.Second)) {
		t.Fatalf("view counts %d checks, last at %v; want %d, the last step's time", v.Checks, v.CheckedAt, len(steps))
	}
	if len(v.Firing) != 1 || len(v.Recent) != 3 || v.Recent[0].State != Firing || v.Recent[1].State != Resolved {
		t.Fatalf("view = %+v", v)
	}
	res := v.Recent[1]
	if !res.Started.Equal(t0.Add(time.Second)) || res.Resolved == nil || !res.Resolved.Equal(t0.Add(5*time.Second)) {
		t.Fatalf("resolved event started %v resolved %v: want the firing's start and the resolve time", res.Started, res.Resolved)
	}
}

func ptr(b bool) *bool { return &b }

func TestTrackerKeepsBoundedHistory(t *testing.T) {
	tr := newTracker(3)
	for i := range 10 {
		tr.update(time.Now(), Event{}, cond(i%2 == 0))
	}
	if n := len(tr.view().Recent); n != 3 {
		t.Fatalf("history holds %d events, want 3", n)
	}
}

func TestRules(t *testing.T) {
	cfg := config.Default().Alerts
	failed := &runs.Run{Kind: runs.Snapshot, Err: errors.New("put object: disk full\nmore"), Failures: 2}
	ok := &runs.Run{Kind: runs.Snapshot}
	gap := repo.Gap{Before: optime.Timestamp{T: 1000}, After: optime.Timestamp{T: 1060}}
	cases := []struct {
		name  string
		o     Observation
		alert string
		want  *bool // nil: no condition
	}{
		{"lag unknown", Observation{Lag: time.Hour}, CaptureLag, nil},
		{"lag high", Observation{LagKnown: true, Lag: 61 * time.Second}, CaptureLag, ptr(true)},
		{"lag at threshold", Observation{LagKnown: true, Lag: 60 * time.Second}, CaptureLag, ptr(false)},
		{"no gap", Observation{Gap: &GapState{}}, Gap, ptr(false)},
		{"open gap", Observation{Gap: &GapState{Gap: gap, Open: true}}, Gap, ptr(true)},
		{"covered gap", Observation{Gap: &GapState{Gap: gap}}, Gap, ptr(false)},
		{"gap unknown", Observation{}, Gap, nil},
		{"snapshot failed", Observation{Snapshot: failed}, SnapshotFailed, ptr(true)},
		{"snapshot ok", Observation{Snapshot: ok}, SnapshotFailed, ptr(false)},
		{"no snapshot yet", Observation{}, SnapshotFailed, nil},
		{"prune failed", Observation{Prune: failed}, PruneFailed, ptr(true)},
		{"window short", Observation{WindowKnown: true, OplogWindow: time.Hour}, OplogWindow, ptr(true)},
		{"window long", Observation{WindowKnown: true, OplogWindow: 13 * time.Hour}, OplogWindow, ptr(false)},
		{"window short, oplog still filling", Observation{WindowKnown: true, OplogWindow: time.Hour, OplogFilling: true}, OplogWindow, ptr(false)},
		{"storage failing briefly", Observation{Storage: StorageState{Failing: true, For: time.Minute}}, StorageErrors, ptr(false)},
		{"storage failing long", Observation{Storage: StorageState{Failing: true, For: 5 * time.Minute}}, StorageErrors, ptr(true)},
		{"spool 81%", Observation{SpoolBytes: 81, SpoolMax: 100}, SpoolFull, ptr(true)},
		{"spool 80%", Observation{SpoolBytes: 80, SpoolMax: 100}, SpoolFull, ptr(false)},
		{"spool full flag", Observation{SpoolBytes: 10, SpoolMax: 100, SpoolFull: true}, SpoolFull, ptr(true)},
		{"spool unwritable", Observation{SpoolWriteKnown: true, SpoolError: "write spool /s: no space left on device"}, SpoolUnwritable, ptr(true)},
		{"spool written", Observation{SpoolWriteKnown: true}, SpoolUnwritable, ptr(false)},
		{"no capture", Observation{}, SpoolUnwritable, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var found *Condition
			for _, x := range evaluate(cfg, c.o) {
				if x.Alert == c.alert {
					found = &x
				}
			}
			switch {
			case c.want == nil && found != nil:
				t.Fatalf("got condition %+v, want none", found)
			case c.want == nil:
			case found == nil:
				t.Fatalf("no %s condition", c.alert)
			case found.Active != *c.want:
				t.Fatalf("%s active = %v, want %v (%s)", c.alert, found.Active, *c.want, found.Summary)
			case found.Summary == "" || strings.Contains(found.Summary, "\n"):
				t.Fatalf("summary %q: want one line", found.Summary)
			}
		})
	}
}

// A threshold of 0 turns its alert off.
func TestRulesOff(t *testing.T) {
	var cfg config.Alerts // every threshold 0
	o := Observation{LagKnown: true, Lag: time.Hour, WindowKnown: true, OplogWindow: time.Second,
		Storage: StorageState{Failing: true, For: time.Hour}, SpoolBytes: 100, SpoolMax: 100}
	if got := evaluate(cfg, o); len(got) != 0 {
		t.Fatalf("conditions with every threshold 0: %+v", got)
	}
}

func TestStorageWatch(t *testing.T) {
	var w storageWatch
	t0 := time.Now()
	steps := []struct {
		errs, segs int64
		failing    bool
		forSec     int
	}{
		{0, 5, false, 0}, {2, 5, true, 0}, {4, 5, true, 1}, {4, 5, true, 2}, {5, 6, false, 0}, {5, 7, false, 0}, {6, 7, true, 0},
	}
	for i, s := range steps {
		st := w.update(t0.Add(time.Duration(i)*time.Second), s.errs, s.segs, "boom")
		if st.Failing != s.failing || st.For != time.Duration(s.forSec)*time.Second {
			t.Fatalf("step %d: %+v, want failing %v for %ds", i, st, s.failing, s.forSec)
		}
	}
}

func TestSourceHosts(t *testing.T) {
	for in, want := range map[string]string{
		"mongodb://backup:hunter2@db1:27017,db2:27017/?replicaSet=rs0&authSource=admin": "db1:27017,db2:27017",
		"mongodb+srv://u:p%40ss@cluster.example.net/admin":                              "cluster.example.net",
		"mongodb://127.0.0.1:27018/?directConnection=true":                              "127.0.0.1:27018",
		"not a uri": "",
	} {
		if got := SourceHosts(in); got != want {
			t.Errorf("SourceHosts(%q) = %q, want %q", in, got, want)
		}
	}
}

// receiver is a webhook endpoint that answers with the given statuses in
// turn (then 200) and records what it got.
type receiver struct {
	*httptest.Server
	mu       sync.Mutex
	statuses []int
	bodies   [][]byte
	headers  []http.Header
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	r := &receiver{statuses: statuses}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.bodies = append(r.bodies, b)
		r.headers = append(r.headers, req.Header.Clone())
		status := http.StatusOK
		if len(r.statuses) > 0 {
			status, r.statuses = r.statuses[0], r.statuses[1:]
		}
		r.mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.bodies)
}

// logBuffer collects log lines for checks.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func testNotifier(t *testing.T, hooks []config.Webhook) (*Notifier, *logBuffer) {
	logs := &logBuffer{}
	n := NewNotifier(hooks, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	n.Attempts, n.Backoff, n.MaxBackoff = 3, 10*time.Millisecond, 20*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return n, logs
}

func waitUntil(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

var testEvent = Event{Alert: CaptureLag, State: Firing, Severity: Warning, Summary: "capture lag is 2m0s, above 1m0s",
	Details: map[string]any{"lag_seconds": 120.0}, Shard: "rs0", SourceHost: "db1:27017",
	Started: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC), Agent: AgentInfo{Host: "h", PID: 1, Version: "v"}}

// A 500 is retried, then the delivery succeeds; the body is the generic
// JSON with the configured headers.
func TestNotifierRetriesThenDelivers(t *testing.T) {
	r := newReceiver(t, 500, 503)
	n, logs := testNotifier(t, []config.Webhook{{URL: config.WebhookURL(r.URL + "/hook/s3cr3t-path"),
		Headers: map[string]config.Secret{"Authorization": "Bearer hdr-s3cr3t"}}})
	n.Send(testEvent)
	// A webhook's deliveries are in order: once a second event arrives,
	// the first is done, so the count before it is final.
	second := testEvent
	second.State = Resolved
	n.Send(second)
	waitUntil(t, "the second event arrives", func() bool { return r.count() >= 4 })
	if n := r.count(); n != 4 || !strings.Contains(string(r.bodies[3]), `"state":"resolved"`) {
		t.Fatalf("%d deliveries, want 3 attempts of the first event (two failures, one success), then the second", n)
	}
	var got map[string]any
	if err := json.Unmarshal(r.bodies[2], &got); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"alert", "state", "severity", "summary", "details", "shard", "source_host", "started", "resolved", "agent"} {
		if _, ok := got[k]; !ok {
			t.Errorf("body lacks %q: %s", k, r.bodies[2])
		}
	}
	if got["alert"] != CaptureLag || got["state"] != Firing || got["resolved"] != nil {
		t.Errorf("body = %s", r.bodies[2])
	}
	if h := r.headers[2].Get("Authorization"); h != "Bearer hdr-s3cr3t" {
		t.Errorf("Authorization header %q not sent", h)
	}
	if !strings.Contains(logs.String(), "retrying") {
		t.Errorf("retries not logged:\n%s", logs)
	}
	assertNoSecrets(t, logs.String())
}

// After Attempts failures the delivery is given up with a log line, and a
// 4xx other than 408 and 429 is not retried at all.
func TestNotifierGivesUp(t *testing.T) {
	r := newReceiver(t, 500, 500, 500, 500, 404)
	n, logs := testNotifier(t, []config.Webhook{{URL: config.WebhookURL(r.URL + "/hook/s3cr3t-path?token=q-s3cr3t"),
		Headers: map[string]config.Secret{"X-Token": "hdr-s3cr3t"}}})
	n.Send(testEvent)
	waitUntil(t, "the delivery is given up", func() bool { return strings.Contains(logs.String(), "giving up") })
	if r.count() != 3 {
		t.Fatalf("%d attempts, want Attempts = 3", r.count())
	}
	// The receiver answers 500 once more, then 404: the 404 ends it.
	n.Send(testEvent)
	waitUntil(t, "the second delivery is given up", func() bool { return strings.Count(logs.String(), "giving up") == 2 })
	if r.count() != 5 {
		t.Fatalf("%d attempts in all, want 5 (the 404 is not retried)", r.count())
	}
	if !strings.Contains(logs.String(), "404") {
		t.Errorf("the status is not logged:\n%s", logs)
	}
	assertNoSecrets(t, logs.String())
}

// A webhook that does not answer at all is logged without its URL.
func TestNotifierUnreachableRedacted(t *testing.T) {
	r := newReceiver(t)
	url := r.URL + "/services/T0/B0/s3cr3t-path"
	r.Close()
	n, logs := testNotifier(t, []config.Webhook{{URL: config.WebhookURL(url)}})
	n.Attempts = 2
	n.Send(testEvent)
	waitUntil(t, "the delivery is given up", func() bool { return strings.Contains(logs.String(), "giving up") })
	if !strings.Contains(logs.String(), "webhook=http://127.0.0.1") {
		t.Errorf("the log does not name the webhook's host:\n%s", logs)
	}
	assertNoSecrets(t, logs.String())
}

func assertNoSecrets(t *testing.T, logs string) {
	t.Helper()
	if strings.Contains(logs, "s3cr3t") {
		t.Fatalf("a webhook secret reached the log:\n%s", logs)
	}
}

func TestSlackBody(t *testing.T) {
	b, err := Body(config.WebhookSlack, testEvent)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	text, _ := got["text"].(string)
	if len(got) != 1 || !strings.Contains(text, "capture_lag") || !strings.Contains(text, "FIRING") ||
		!strings.Contains(text, testEvent.Summary) || !strings.Contains(text, "db1:27017") {
		t.Fatalf("slack body = %s", b)
	}
	res := testEvent
	res.State = Resolved
	if b, _ := Body(config.WebhookSlack, res); !strings.Contains(string(b), "RESOLVED") {
		t.Fatalf("resolved slack body = %s", b)
	}
}

// The monitor end to end without an agent: a failed snapshot fires
// snapshot_failed once over a webhook, the next success resolves it.
func TestMonitorSnapshotFailedFiresAndResolves(t *testing.T) {
	r := newReceiver(t)
	rec := &runs.Recorder{}
	cfg := config.Default().Alerts
	cfg.Webhooks = []config.Webhook{{URL: config.WebhookURL(r.URL)}}
	logs := &logBuffer{}
	m := New(Deps{Config: cfg, Shard: "rs0", Source: "mongodb://u:hunter2@db1:27017/", Runs: rec, Version: "t",
		Log: slog.New(slog.NewTextHandler(logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { m.Notifier().Run(ctx); close(stopped) }()
	defer func() { cancel(); <-stopped }()

	ctx0 := context.Background()
	if evs := m.Check(ctx0, time.Now()); len(evs) != 0 {
		t.Fatalf("events before any snapshot: %+v", evs)
	}
	rec.Record(runs.Snapshot, time.Now(), errors.New("put object: no space left on device"))
	for range 3 {
		m.Check(ctx0, time.Now())
	}
	rec.Record(runs.Snapshot, time.Now(), nil)
	m.Check(ctx0, time.Now())
	waitUntil(t, "two deliveries", func() bool { return r.count() == 2 })
	var evs []Event
	for _, b := range r.bodies {
		var ev Event
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		evs = append(evs, ev)
	}
	if evs[0].Alert != SnapshotFailed || evs[0].State != Firing || evs[1].State != Resolved ||
		!strings.Contains(evs[0].Summary, "no space left") || evs[0].SourceHost != "db1:27017" || evs[0].Agent.Version != "t" {
		t.Fatalf("events = %+v", evs)
	}
	if m.IsFiring(SnapshotFailed) || len(m.View().Recent) != 2 {
		t.Fatalf("view after resolving: %+v", m.View())
	}
	if strings.Contains(logs.String()+string(r.bodies[0]), "hunter2") {
		t.Fatal("the source password reached a log or a webhook")
	}
}

// A snapshot the repository gains after a failed scheduled one (taken by
// hand, or over the API) resolves snapshot_failed, without waiting for the
// agent's next scheduled snapshot.
func TestSnapshotFailedResolvesOnAnySnapshot(t *testing.T) {
	ctx := context.Background()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url})
	if err != nil {
		t.Fatal(err)
	}
	rec := &runs.Recorder{}
	m := New(Deps{Config: config.Default().Alerts, Shard: "rs0", Repo: r, Runs: rec, Log: slog.New(slog.DiscardHandler)})
	failedAt := time.Now().Add(-time.Minute)
	rec.Record(runs.Snapshot, failedAt, errors.New("put object: no space left on device"))
	m.Check(ctx, time.Now())
	if !m.IsFiring(SnapshotFailed) {
		t.Fatal("snapshot_failed does not fire after a failed snapshot")
	}
	older := repo.Manifest{ID: repo.NewSnapshotID(failedAt.Add(-time.Hour)), Shard: "rs0"}
	if err := r.WriteManifest(ctx, older); err != nil {
		t.Fatal(err)
	}
	m.Check(ctx, time.Now())
	if !m.IsFiring(SnapshotFailed) {
		t.Fatal("a snapshot older than the failure resolved snapshot_failed")
	}
	newer := repo.Manifest{ID: repo.NewSnapshotID(time.Now()), Shard: "rs0"}
	if err := r.WriteManifest(ctx, newer); err != nil {
		t.Fatal(err)
	}
	if evs := m.Check(ctx, time.Now()); len(evs) != 1 || evs[0].Alert != SnapshotFailed || evs[0].State != Resolved {
		t.Fatalf("after a snapshot by hand: events %+v, want snapshot_failed resolved", evs)
	}
}
