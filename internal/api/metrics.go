package api

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/runs"
)

// metrics are the agent's Prometheus metrics, in their own registry (never
// the global one: tests and embedders run several agents in one process).
type metrics struct {
	reg          *prometheus.Registry
	snapshotDur  prometheus.Histogram
	snapshotFail prometheus.Counter
	lastSnapshot atomic.Int64 // Unix nanoseconds
	pruneDur     prometheus.Histogram
	pruneFail    prometheus.Counter
	restoreDur   prometheus.Histogram
	restoreFail  prometheus.Counter
	drills       *drillMetrics
	mu           sync.Mutex      // guards shards
	shards       map[string]bool // shards whose capture metrics are registered
}

var durationBuckets = prometheus.ExponentialBuckets(0.5, 2, 14) // 0.5 s .. about 2 h

func newMetrics(d Deps) *metrics {
	m := &metrics{reg: prometheus.NewRegistry(), shards: map[string]bool{}}
	m.snapshotDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_snapshot_duration_seconds",
		Help: "Duration of snapshots, scheduled or requested through the API.", Buckets: durationBuckets})
	m.snapshotFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_snapshot_failures_total",
		Help: "Snapshots, scheduled or requested through the API, that failed."})
	lastSnapshot := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_last_snapshot_timestamp_seconds",
		Help: "When (Unix seconds) the newest complete snapshot finished; 0 while the repository has none."},
		func() float64 { return float64(m.lastSnapshot.Load()) / 1e9 })
	m.pruneDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_prune_duration_seconds",
		Help: "Duration of the agent's prune runs.", Buckets: durationBuckets})
	m.pruneFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_prune_failures_total",
		Help: "Prune runs of the agent that failed."})
	m.restoreDur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_restore_duration_seconds",
		Help: "Duration of restores run through the API.", Buckets: durationBuckets})
	m.restoreFail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_restore_failures_total",
		Help: "Restores run through the API that failed."})
	m.reg.MustRegister(m.snapshotDur, m.snapshotFail, lastSnapshot, m.pruneDur, m.pruneFail, m.restoreDur, m.restoreFail,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registerCapture(d)
	m.registerAlerts(d)
	m.drills = registerDrills(m.reg, d.Runs)
	if d.Runs != nil {
		d.Runs.Observe(m.observeRun)
	}
	return m
}

// registerCapture exposes the capture's own counters, read at scrape time.
func (m *metrics) registerCapture(d Deps) {
	units := d.Units
	if len(units) == 0 && d.Stats != nil {
		units = []Unit{{Shard: d.Shard, Stats: d.Stats, Spool: d.Spool}}
	}
	for _, u := range units {
		m.registerUnit(u)
	}
}

// addUnit is registerUnit for a unit that may already be registered
// (the server was built after the unit started).
func (m *metrics) addUnit(u Unit) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.shards[u.Shard] {
		return
	}
	m.registerUnit(u)
}

// registerUnit exposes one shard's capture numbers, labelled shard.
func (m *metrics) registerUnit(u Unit) {
	m.shards[u.Shard] = true
	st, shard := u.Stats, prometheus.Labels{"shard": u.Shard}
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_capture_lag_seconds", ConstLabels: shard,
			Help: "Seconds between the source's newest oplog entry and the newest entry stored in the repository."},
			func() float64 { return st.Lag().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_source_oplog_window_seconds", ConstLabels: shard,
			Help: "Seconds between the oldest and newest entry of the source's oplog: how long capture may be down without a gap."},
			func() float64 { w, _ := st.OplogWindow(); return w.Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_last_durable_timestamp_seconds", ConstLabels: shard,
			Help: "Oplog time (Unix seconds) of the newest entry stored in the repository."},
			func() float64 { return float64(st.LastDurable().T) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_segments_written_total", ConstLabels: shard,
			Help: "Oplog segments written to the repository."},
			func() float64 { return float64(st.Segments.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_bytes_written_total", ConstLabels: shard,
			Help: "Bytes of oplog segments written to the repository."},
			func() float64 { return float64(st.BytesWritten.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "rewind_storage_errors_total", ConstLabels: shard,
			Help: "Failed writes to the repository (each is retried from the spool)."},
			func() float64 { return float64(st.StorageErrors.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_spool_full", ConstLabels: shard,
			Help: "1 while capture has stopped reading the source because the spool is full."},
			func() float64 { return b2f(st.SpoolFull.Load()) }),
	)
	if sp := u.Spool; sp != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_spool_bytes", ConstLabels: shard,
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

// registerAlerts exposes rewind_alerts_firing{alert="..."}: 1 while an
// alert fires.
func (m *metrics) registerAlerts(d Deps) {
	if d.Alerts == nil {
		return
	}
	for _, name := range alert.Names {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_alerts_firing",
			Help: "1 while the alert fires (see docs/ALERTS.md).", ConstLabels: prometheus.Labels{"alert": name}},
			func() float64 { return b2f(d.Alerts.IsFiring(name)) }))
	}
}

// observeRun counts a finished snapshot or prune run, whoever started it.
func (m *metrics) observeRun(r runs.Run) {
	switch r.Kind {
	case runs.Snapshot:
		m.snapshotDur.Observe(r.Duration.Seconds())
		if r.Err != nil {
			m.snapshotFail.Inc()
		} else {
			m.snapshotFinished(r.Started.Add(r.Duration))
		}
	case runs.Prune:
		m.pruneDur.Observe(r.Duration.Seconds())
		if r.Err != nil {
			m.pruneFail.Inc()
		}
	}
}

// snapshotFinished moves rewind_last_snapshot_timestamp_seconds forward to t.
func (m *metrics) snapshotFinished(t time.Time) {
	for {
		cur := m.lastSnapshot.Load()
		if t.UnixNano() <= cur || m.lastSnapshot.CompareAndSwap(cur, t.UnixNano()) {
			return
		}
	}
}

// seedLastSnapshot reads the newest snapshot from the repository at start,
// so rewind_last_snapshot_timestamp_seconds does not read 0 until the
// agent takes one.
func (m *metrics) seedLastSnapshot(ctx context.Context, d Deps) {
	if d.Repo == nil {
		return
	}
	if refs, err := d.Repo.ListSnapshots(ctx, d.Shard); err == nil && len(refs) > 0 {
		m.snapshotFinished(refs[len(refs)-1].ModTime)
	}
}

func (m *metrics) observeRestore(d time.Duration, err error) {
	m.restoreDur.Observe(d.Seconds())
	if err != nil {
		m.restoreFail.Inc()
	}
}
