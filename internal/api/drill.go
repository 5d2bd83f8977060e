package api

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/runs"
)

// drillMetrics are the scheduled restore drills' metrics. GET
// /api/v1/status shows the last drill itself (status.Report.LastDrill).
type drillMetrics struct {
	dur         prometheus.Histogram
	fail        prometheus.Counter
	lastSuccess atomic.Int64 // Unix nanoseconds
}

// registerDrills adds rewind_drill_duration_seconds,
// rewind_drill_failures_total and
// rewind_drill_last_success_timestamp_seconds, fed by every drill run the
// agent records.
func registerDrills(reg *prometheus.Registry, rec *runs.Recorder) *drillMetrics {
	m := &drillMetrics{}
	m.dur = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "rewind_drill_duration_seconds",
		Help: "Duration of the agent's restore drills (restore, comparison and cleanup).", Buckets: durationBuckets})
	m.fail = prometheus.NewCounter(prometheus.CounterOpts{Name: "rewind_drill_failures_total",
		Help: "Restore drills of the agent that did not prove their point exact (a difference, a point the repository cannot restore, nothing to compare with, or a drill that could not run)."})
	last := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "rewind_drill_last_success_timestamp_seconds",
		Help: "When (Unix seconds) the newest exact restore drill recorded in the repository finished (the agent's, or rewind drill's); 0 while none is."},
		func() float64 { return float64(m.lastSuccess.Load()) / 1e9 })
	reg.MustRegister(m.dur, m.fail, last)
	if rec != nil {
		rec.Observe(m.observe)
	}
	return m
}

// seed sets the last success from the repository's newest exact drill, so
// that a restarted agent does not report 0 until its next drill. A drill
// of this agent that ends meanwhile wins.
func (m *drillMetrics) seed(ctx context.Context, d Deps) {
	if d.Repo == nil {
		return
	}
	refs, err := d.Repo.ListDrillResults(ctx, d.Shard)
	if err != nil {
		return
	}
	for i := len(refs) - 1; i >= 0; i-- {
		res, err := d.Repo.ReadDrillResult(ctx, d.Shard, refs[i].ID)
		if err != nil {
			return // encrypted without the identity, or unreadable: the agent's own drills will tell
		}
		if res.Verdict == drill.Exact {
			ended := res.Started.Add(time.Duration(res.Seconds * float64(time.Second)))
			m.lastSuccess.CompareAndSwap(0, ended.UnixNano())
			return
		}
	}
}

func (m *drillMetrics) observe(r runs.Run) {
	if r.Kind != runs.Drill {
		return
	}
	m.dur.Observe(r.Duration.Seconds())
	if r.Err != nil {
		m.fail.Inc()
		return
	}
	m.lastSuccess.Store(r.Started.Add(r.Duration).UnixNano())
}

// drills is GET /api/v1/drills: the drills recorded in the repository,
// newest first, with a summary of their verdicts (`rewind drill history
// --json`): the report auditors ask for. ?limit=N keeps the newest N.
func (s *Server) drills(w http.ResponseWriter, r *http.Request) {
	p := newParams(r, []string{"limit"}, nil)
	limit := p.count("limit", 0, 0, 1000)
	if p.err != nil {
		badRequest(w, p.err)
		return
	}
	rep, err := drill.LoadReport(r.Context(), s.d.Repo, s.d.Repo.Location(), s.d.Shard, limit, time.Now())
	if err != nil {
		s.recordsError(w, "the drill records", err)
		return
	}
	WriteData(w, http.StatusOK, rep)
}
