package api

import (
	"context"
	"net/http"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// TS is an oplog timestamp as JSON: {"t": seconds, "i": increment, "time": RFC 3339}.
type TS struct {
	T    uint32 `json:"t"`
	I    uint32 `json:"i"`
	Time string `json:"time"`
}

func toTS(ts optime.Timestamp) *TS {
	if ts.IsZero() {
		return nil
	}
	return &TS{T: ts.T, I: ts.I, Time: ts.Time().UTC().Format(time.RFC3339)}
}

// Timeline is one unbroken run of oplog segments.
type Timeline struct {
	ID       string `json:"id"`
	Flavor   string `json:"flavor,omitempty"`
	First    *TS    `json:"first"`
	Last     *TS    `json:"last"`
	Segments int    `json:"segments"`
	Bytes    int64  `json:"bytes"`
}

// Gap is a range of oplog entries lost while capture was down.
type Gap struct {
	Before   *TS       `json:"before"`
	After    *TS       `json:"after"`
	Detected time.Time `json:"detected"`
}

// AgentInfo is the agent's heartbeat, as `rewind status --json` shows it.
type AgentInfo struct {
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Version    string    `json:"version,omitempty"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Alive      bool      `json:"alive"`
	LagSeconds float64   `json:"lag_seconds"`
}

// Status is GET /api/v1/status: the fields of `rewind status --json` for
// the agent's shard.
type Status struct {
	Shard       string     `json:"shard"`
	LastDurable *TS        `json:"last_durable"`
	LagSeconds  *float64   `json:"lag_seconds"`
	Segments    int        `json:"segments"`
	Bytes       int64      `json:"bytes"`
	Timelines   []Timeline `json:"timelines"`
	Gaps        []Gap      `json:"gaps"`
	Agent       *AgentInfo `json:"agent"`
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

// heartbeatAliveFor matches `rewind status`: an older heartbeat is a dead agent.
const heartbeatAliveFor = 30 * time.Second

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	h, err := s.d.Repo.History(r.Context(), s.d.Shard)
	if err != nil {
		s.storageError(w, "read the repository's history", err)
		return
	}
	st := Status{Shard: s.d.Shard, Timelines: timelines(h), Gaps: gaps(h)}
	for _, tl := range st.Timelines {
		st.Segments += tl.Segments
		st.Bytes += tl.Bytes
		st.LastDurable = tl.Last
	}
	if hb, err := s.d.Repo.ReadHeartbeat(r.Context(), s.d.Shard); err == nil {
		alive := time.Since(hb.Updated) < heartbeatAliveFor
		st.Agent = &AgentInfo{Host: hb.Host, PID: hb.PID, Version: hb.Version, Started: hb.Started,
			Updated: hb.Updated, Alive: alive, LagSeconds: hb.Lag.Seconds()}
		if alive {
			lag := hb.Lag.Seconds()
			st.LagSeconds = &lag
		}
	}
	if c := s.d.Stats; c != nil {
		st.Capture = CaptureInfo{LastRead: toTS(c.LastRead()), Timeline: c.Timeline(), LastError: c.LastError(),
			SpoolFull: c.SpoolFull.Load()}
	}
	if s.d.Spool != nil {
		st.Capture.SpoolBytes = s.d.Spool.Bytes()
	}
	writeData(w, http.StatusOK, st)
}

func timelines(h repo.History) []Timeline {
	out := []Timeline{}
	for _, tl := range h.Timelines {
		tj := Timeline{ID: tl.ID, First: toTS(tl.First), Last: toTS(tl.Last), Segments: len(tl.Segments)}
		if tl.Info != nil {
			tj.Flavor = tl.Info.Flavor
		}
		for _, seg := range tl.Segments {
			tj.Bytes += seg.Size
		}
		out = append(out, tj)
	}
	return out
}

func gaps(h repo.History) []Gap {
	out := []Gap{}
	for _, g := range h.Gaps {
		out = append(out, Gap{Before: toTS(g.Before), After: toTS(g.After), Detected: g.Detected})
	}
	return out
}

// Snapshot is a complete snapshot.
type Snapshot struct {
	ID          string    `json:"id"`
	Shard       string    `json:"shard"`
	Start       *TS       `json:"start"`
	End         *TS       `json:"end"`
	Started     time.Time `json:"started"`
	Finished    time.Time `json:"finished"`
	Collections int       `json:"collections"`
	Documents   int64     `json:"documents"`
	Bytes       int64     `json:"bytes"`
	Chunks      int       `json:"chunks"`
}

// Window is a restore window: every timestamp in [from, to] is restorable.
type Window struct {
	Snapshot string `json:"snapshot"`
	Timeline string `json:"timeline"`
	From     *TS    `json:"from"`
	To       *TS    `json:"to"`
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
	v := TimelineView{Shard: sh.ID, Windows: windows(sh.Windows), Span: windows(sh.Span()), Gaps: gaps(h),
		Timelines: timelines(h), Snapshots: snapshots(sh.Snapshots)}
	writeData(w, http.StatusOK, v)
}

func (s *Server) snapshots(w http.ResponseWriter, r *http.Request) {
	sh, err := s.loadShard(r.Context())
	if err != nil {
		s.storageError(w, "load the catalog", err)
		return
	}
	writeData(w, http.StatusOK, snapshots(sh.Snapshots))
}

func windows(ws []catalog.Window) []Window {
	out := []Window{}
	for _, w := range ws {
		out = append(out, Window{Snapshot: w.Snapshot, Timeline: w.Timeline, From: toTS(w.From), To: toTS(w.To)})
	}
	return out
}

func snapshots(ss []catalog.Snapshot) []Snapshot {
	out := []Snapshot{}
	for _, sn := range ss {
		out = append(out, Snapshot{ID: sn.ID, Shard: sn.Shard, Start: toTS(sn.Start), End: toTS(sn.End),
			Started: sn.Started, Finished: sn.Finished, Collections: sn.Collections, Documents: sn.Documents,
			Bytes: sn.Bytes, Chunks: sn.Chunks})
	}
	return out
}

// storageError answers 503: the repository could not be read.
func (s *Server) storageError(w http.ResponseWriter, what string, err error) {
	s.d.Log.Warn("api: "+what+" failed", "err", err)
	writeError(w, http.StatusServiceUnavailable, codeUnavailable, "%s: %v; check that the repository is reachable", what, err)
}
