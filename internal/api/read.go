package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/cluster"
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

// TimelineView is GET /api/v1/timeline: what can be restored. For a
// replica set it is the agent's shard's. For a sharded cluster, Windows and
// Span are the cluster's windows (catalog.Catalog.ClusterWindows: the
// points every shard can be restored to; they name no snapshot or
// timeline), Shard names its shards joined with ",", the top-level Gaps,
// Timelines and Snapshots are empty, and Shards holds each shard's own.
type TimelineView struct {
	Shard     string     `json:"shard"`
	Windows   []Window   `json:"windows"`
	Span      []Window   `json:"span"` // windows merged where they touch
	Gaps      []Gap      `json:"gaps"`
	Timelines []Timeline `json:"timelines"`
	Snapshots []Snapshot `json:"snapshots"`
	// Cluster is true for a sharded cluster's repository (absent for a
	// replica set's).
	Cluster bool `json:"cluster,omitempty"`
	// Shards are a cluster's shards and config server, as `rewind list
	// --json` shows them, in name order (absent for a replica set).
	Shards []ShardTimeline `json:"shards,omitempty"`
}

// ShardTimeline is one shard of a sharded cluster in GET /api/v1/timeline:
// the shard's part of `rewind list --json` and its windows merged where
// they touch.
type ShardTimeline struct {
	status.ShardList
	Span []Window `json:"span"`
	// ConfigServer marks the config server's timelines: captured, and
	// not part of the cluster's windows, since a cluster restore does not
	// restore its data (the routing metadata comes from the cluster
	// snapshot).
	ConfigServer bool `json:"config_server,omitempty"`
}

func (s *Server) loadShard(ctx context.Context) (catalog.Shard, error) {
	snaps, err := s.d.Repo.ListSnapshots(ctx, s.d.Shard)
	if err != nil {
		return catalog.Shard{}, err
	}
	return catalog.LoadShard(ctx, s.d.Repo, s.d.Shard, snaps)
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request) {
	// A cluster's view needs every shard (catalog.Load); a replica set's
	// reads its one shard only, as it always did.
	if s.d.Repo.Config().Source.Cluster != nil {
		cat, err := catalog.Load(r.Context(), s.d.Repo)
		if err != nil {
			s.storageError(w, "load the catalog", err)
			return
		}
		WriteData(w, http.StatusOK, clusterTimeline(cat))
		return
	}
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

// clusterTimeline is a sharded cluster's timeline view. Its windows are
// already merged (intersections of the shards' spans), so they are its
// span too.
func clusterTimeline(cat catalog.Catalog) TimelineView {
	cw := status.Windows(cat.ClusterWindows())
	v := TimelineView{Shard: strings.Join(cat.Cluster, ","), Windows: cw, Span: cw, Gaps: []Gap{},
		Timelines: []Timeline{}, Snapshots: []Snapshot{}, Cluster: true, Shards: []ShardTimeline{}}
	for i, l := range status.ListShards(cat) {
		sh := cat.Shards[i]
		v.Shards = append(v.Shards, ShardTimeline{ShardList: l, Span: status.Windows(catalog.Shard{Windows: sh.Reach()}.Span()),
			ConfigServer: sh.ID == cluster.ConfigShardName && !slices.Contains(cat.Cluster, sh.ID)})
	}
	slices.SortFunc(v.Shards, func(a, b ShardTimeline) int { return strings.Compare(a.Shard, b.Shard) })
	return v
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
