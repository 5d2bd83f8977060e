package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics are the agent's Prometheus metrics, in their own registry (never
// the global one: tests and embedders run several agents in one process).
type metrics struct {
	reg          *prometheus.Registry
	lag          prometheus.Gauge
	oplogWindow  prometheus.Gauge
	snapshotDur  prometheus.Histogram
	snapshotFail prometheus.Counter
	restoreDur   prometheus.Histogram
	restoreFail  prometheus.Counter
}

var durationBuckets = prometheus.ExponentialBuckets(0.5, 2, 14) // 0.5 s .. about 2 h

func newMetrics(d Deps) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	m.lag = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rewind_capture_lag_seconds",
		Help: "Seconds between the source's newest oplog entry and the newest entry stored in the repository."})
	m.oplogWindow = prometheus.NewGauge(prometheus.GaugeOpts{Name: "rewind_source_oplog_window_seconds",
		Help: "Seconds between the oldest and newest entry of the source's oplog: how long capture may be down without a gap."})
	m.snapshotDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_snapshot_duration_seconds",
		Help: "Duration of snapshots requested through the API.", Buckets: durationBuckets})
	m.snapshotFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_snapshot_failures_total",
		Help: "Snapshots requested through the API that failed."})
	m.restoreDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_restore_duration_seconds",
		Help: "Duration of restores run through the API.", Buckets: durationBuckets})
	m.restoreFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_restore_failures_total",
		Help: "Restores run through the API that failed."})
	m.reg.MustRegister(m.lag, m.oplogWindow, m.snapshotDur, m.snapshotFail, m.restoreDur, m.restoreFail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerCapture(d)
	return m
}

// registerCapture exposes the capture's own counters, read at scrape time.
func (m *metrics) registerCapture(d Deps) {
	st := d.Stats
	if st == nil {
		return
	}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_last_durable_timestamp_seconds",
			Help: "Oplog time (Unix seconds) of the newest entry stored in the repository."},
			func() float64 { return float64(st.LastDurable().T) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_segments_written_total",
			Help: "Oplog segments written to the repository."},
			func() float64 { return float64(st.Segments.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_bytes_written_total",
			Help: "Bytes of oplog segments written to the repository."},
			func() float64 { return float64(st.BytesWritten.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_storage_errors_total",
			Help: "Failed writes to the repository (each is retried from the spool)."},
			func() float64 { return float64(st.StorageErrors.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_spool_full",
			Help: "1 while capture has stopped reading the source because the spool is full."},
			func() float64 { return b2f(st.SpoolFull.Load()) }),
	)
	if sp := d.Spool; sp != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_spool_bytes",
			Help: "Bytes of batches waiting in the local spool for upload."},
			func() float64 { return float64(sp.Bytes()) }))
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func (m *metrics) observeSnapshot(d time.Duration, err error) {
	m.snapshotDur.Observe(d.Seconds())
	if err != nil {
		m.snapshotFail.Inc()
	}
}

func (m *metrics) observeRestore(d time.Duration, err error) {
	m.restoreDur.Observe(d.Seconds())
	if err != nil {
		m.restoreFail.Inc()
	}
}

// refresh measures what needs the source (its oplog window and the capture
// lag) every d.Refresh until ctx ends, so a scrape never waits on the source.
func (m *metrics) refresh(ctx context.Context, d Deps) {
	t := time.NewTicker(d.Refresh)
	defer t.Stop()
	for {
		m.measure(ctx, d)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *metrics) measure(ctx context.Context, d Deps) {
	if d.Source == nil {
		return
	}
	newest, err := d.Source.NewestEntry(ctx)
	if err != nil {
		return
	}
	if oldest, err := d.Source.OldestEntry(ctx); err == nil && !oldest.IsZero() {
		m.oplogWindow.Set(float64(newest.T) - float64(oldest.T))
	}
	if d.Stats != nil {
		lag := 0.0
		if durable := d.Stats.LastDurable(); newest.After(durable) && !durable.IsZero() {
			lag = float64(newest.T) - float64(durable.T)
		}
		m.lag.Set(lag)
	}
}
