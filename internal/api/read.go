package api

import (
	"context"
	"net/http"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
)

// The status types are shared with `rewind status --json`.
type (
	// TS is an oplog timestamp as JSON: {"t": seconds, "i": increment, "time": RFC 3339}.
	TS = status.TS
	// Timeline is one unbroken run of oplog segments.
	Timeline = status.Timeline
	// Gap is a range of oplog entries lost while capture was down.
	Gap = status.Gap
	// AgentInfo is the agent's heartbeat.
	AgentInfo = status.Agent
	// Snapshot is a complete snapshot.
	Snapshot = status.Snapshot
	// Window is a restore window: every timestamp in [from, to] is restorable.
	Window = status.Window
)

func toTS(ts optime.Timestamp) *TS { return status.ToTS(ts) }

// Status is GET /api/v1/status: the fields of `rewind status --json`
// (the agent's shard at the top level for a replica set, the cluster's for
// a sharded cluster; every shard in "shards"), and the live state of the
// agent's (first shard's) capture.
type Status struct {
	status.Overview
	// Capture is what the running capture reports now.
	Capture CaptureInfo `json:"capture"`
}

// CaptureInfo is the live state of the agent's capture.
type CaptureInfo struct {
	LastRead   *TS    `json:"last_read"`
	Timeline   string `json:"timeline"`
	LastError  string `json:"last_error"`
	SpoolBytes int64  `json:"spool_bytes"`
	SpoolFull  bool   `json:"spool_full"`
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	ov, err := status.LoadOverview(r.Context(), s.d.Repo, s.d.Shard, time.Now())
	if err != nil {
		s.storageError(w, "read the repository's history", err)
		return
	}
	st := Status{Overview: ov}
	if c := s.d.Stats; c != nil {
		st.Capture = CaptureInfo{LastRead: toTS(c.LastRead()), Timeline: c.Timeline(), LastError: c.LastError(),
			SpoolFull: c.SpoolFull.Load()}
	}
	if s.d.Spool != nil {
		st.Capture.SpoolBytes = s.d.Spool.Bytes()
	}
	WriteData(w, http.StatusOK, st)
}

// TimelineView is GET /api/v1/timeline: what can be restored.
type TimelineView struct {
	Shard     string     `json:"shard"`
	Windows   []Window   `json:"windows"`
	Span      []Window   `json:"span"` // windows merged where they touch
	Gaps      []Gap      `json:"gaps"`
	Timelines []Timeline `json:"timelines"`
	Snapshots []Snapshot `json:"snapshots"`
}

func (s *Server) loadShard(ctx context.Context) (catalog.Shard, error) {
	snaps, err := s.d.Repo.ListSnapshots(ctx, s.d.Shard)
	if err != nil {
		return catalog.Shard{}, err
	}
	return catalog.LoadShard(ctx, s.d.Repo, s.d.Shard, snaps)
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	sh, err := s.loadShard(r.Context())
	if err != nil {
		s.storageError(w, "load the catalog", err)
		return
	}
	h := repo.History{Timelines: sh.Timelines, Gaps: sh.Gaps}
	v := TimelineView{Shard: sh.ID, Windows: status.Windows(sh.Windows), Span: status.Windows(sh.Span()), Gaps: status.Gaps(h),
		Timelines: status.Timelines(h), Snapshots: status.Snapshots(sh.Snapshots)}
	WriteData(w, http.StatusOK, v)
}

func (s *Server) snapshots(w http.ResponseWriter, r *http.Request) {
	sh, err := s.loadShard(r.Context())
	if err != nil {
		s.storageError(w, "load the catalog", err)
		return
	}
	WriteData(w, http.StatusOK, status.Snapshots(sh.Snapshots))
}

// storageError answers 503: the repository could not be read.
func (s *Server) storageError(w http.ResponseWriter, what string, err error) {
	s.d.Log.Warn("api: "+what+" failed", "err", err)
	WriteError(w, http.StatusServiceUnavailable, CodeUnavailable, "%s: %v; check that the repository is reachable", what, err)
}
