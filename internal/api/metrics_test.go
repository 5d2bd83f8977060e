package api_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// scrape reads /metrics with the token and parses it as Prometheus does.
func scrape(t *testing.T, c *client) map[string]*dto.MetricFamily {
	t.Helper()
	req, err := http.NewRequest("GET", c.base+"/metrics", nil)
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(t, err)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// value is the value of a family's only sample (gauge or counter).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string) float64 {
	t.Helper()
	f, ok := fams[name]
	if !ok || len(f.Metric) != 1 {
		t.Fatalf("metric %s missing from the scrape", name)
	}
	m := f.Metric[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	}
	t.Fatalf("metric %s is neither a gauge nor a counter", name)
	return 0
}

// The scrape parses, every metric of ours has the rewind_ prefix, and the
// capture's numbers follow the workload.
func TestMetricsFollowWorkload(t *testing.T) {
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))
	runWorkload(t, srv, 5, 50, "m1", nil)
	waitFor(t, 60*time.Second, "a segment is written", func() bool { return c.a.Stats().Segments.Load() > 0 })
	before := scrape(t, c)
	for name := range before {
		if !strings.HasPrefix(name, "rewind_") && !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
			t.Fatalf("metric %s lacks the rewind_ prefix", name)
		}
	}
	for _, name := range []string{"rewind_capture_lag_seconds", "rewind_last_durable_timestamp_seconds",
		"rewind_segments_written_total", "rewind_bytes_written_total", "rewind_storage_errors_total",
		"rewind_spool_bytes", "rewind_snapshot_failures_total", "rewind_restore_failures_total",
		"rewind_snapshot_duration_seconds", "rewind_restore_duration_seconds", "rewind_prune_failures_total",
		"rewind_prune_duration_seconds", "rewind_last_snapshot_timestamp_seconds", "rewind_alerts_firing"} {
		if _, ok := before[name]; !ok {
			t.Fatalf("metric %s missing", name)
		}
	}
	segs0 := value(t, before, "rewind_segments_written_total")
	durable0 := value(t, before, "rewind_last_durable_timestamp_seconds")
	if durable0 < float64(time.Now().Add(-time.Hour).Unix()) || value(t, before, "rewind_bytes_written_total") == 0 {
		t.Fatalf("last durable %v, bytes %v: capture numbers not exposed", durable0, value(t, before, "rewind_bytes_written_total"))
	}

	time.Sleep(1100 * time.Millisecond) // oplog times are whole seconds
	runWorkload(t, srv, 6, 50, "m2", nil)
	var after map[string]*dto.MetricFamily
	waitFor(t, 60*time.Second, "segments written grows and the last durable timestamp moves", func() bool {
		after = scrape(t, c)
		return value(t, after, "rewind_segments_written_total") > segs0 &&
			value(t, after, "rewind_last_durable_timestamp_seconds") > durable0
	})
	if lag := value(t, after, "rewind_capture_lag_seconds"); lag < 0 || lag > 60 {
		t.Fatalf("capture lag %v s while the agent keeps up", lag)
	}
	// The source's oplog now spans the two workloads, at least a second apart.
	waitFor(t, 30*time.Second, "the source oplog window is measured", func() bool {
		return value(t, scrape(t, c), "rewind_source_oplog_window_seconds") >= 1
	})
	if v := value(t, after, "rewind_storage_errors_total"); v != 0 {
		t.Fatalf("storage errors %v on a local file repository", v)
	}
}

// Snapshots the agent takes on its schedule, and its prune runs, are
// counted like those requested over the API.
func TestMetricsCountScheduledRuns(t *testing.T) {
	srv := testserver.Start(t)
	runWorkload(t, srv, 7, 30, "m3", nil)
	cfg := agentConfig(t, srv)
	cfg.Snapshot.Every = config.Duration(time.Hour) // the first one at once: the repository has none
	cfg.Retention.PruneInterval = config.Duration(200 * time.Millisecond)
	c := startAgent(t, cfg)
	var fams map[string]*dto.MetricFamily
	waitFor(t, 60*time.Second, "a scheduled snapshot and a prune run are counted", func() bool {
		fams = scrape(t, c)
		return histCount(fams, "rewind_snapshot_duration_seconds") >= 1 && histCount(fams, "rewind_prune_duration_seconds") >= 1
	})
	if f := value(t, fams, "rewind_snapshot_failures_total") + value(t, fams, "rewind_prune_failures_total"); f != 0 {
		t.Fatalf("%v failures counted", f)
	}
	if last := value(t, fams, "rewind_last_snapshot_timestamp_seconds"); last < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("rewind_last_snapshot_timestamp_seconds = %v after a snapshot", last)
	}
}

func histCount(fams map[string]*dto.MetricFamily, name string) uint64 {
	f, ok := fams[name]
	if !ok || len(f.Metric) != 1 || f.Metric[0].Histogram == nil {
		return 0
	}
	return f.Metric[0].Histogram.GetSampleCount()
}
