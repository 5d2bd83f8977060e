// Package status derives capture status from a repository alone: the newest
// durable timestamp, lag, segments, timelines, gaps, snapshots, whether
// anything is restorable, and the agent's heartbeat. `rewind status --json`
// and GET /api/v1/status print it. It reads listings and unencrypted
// metadata only, so it needs no identity.
package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// AliveFor is how old a heartbeat may be for its agent to count as alive.
const AliveFor = 30 * time.Second

// TS is an oplog timestamp as JSON: {"t": seconds, "i": increment, "time": RFC 3339}.
type TS struct {
	T    uint32 `json:"t"`
	I    uint32 `json:"i"`
	Time string `json:"time"`
}

// ToTS converts a timestamp; the zero timestamp becomes nil (JSON null).
func ToTS(ts optime.Timestamp) *TS {
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

// Agent is the agent's heartbeat.
type Agent struct {
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Version    string    `json:"version,omitempty"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Alive      bool      `json:"alive"`
	LagSeconds float64   `json:"lag_seconds"`
}

// Report is the capture status of one shard (a replica set).
type Report struct {
	Shard string `json:"shard"`
	// Name is the shard's name (its id in the repository, as Shard), ""
	// for a cluster's own line.
	Name string `json:"name,omitempty"`
	// State is the shard's capture: StateCapturing, StateFailing,
	// StateStopped or StateNoAgent; "" for a cluster's own line.
	State string `json:"state,omitempty"`
	// Error is the shard's capture error while State is StateFailing.
	Error       string `json:"error,omitempty"`
	LastDurable *TS    `json:"last_durable"`
	// CoveredThrough is how far the shard's oplog is known complete in
	// the repository (its agent's heartbeat): at least LastDurable while
	// the agent runs, ahead of it while the shard is idle. null without a
	// heartbeat or a segment.
	CoveredThrough *TS        `json:"covered_through"`
	LagSeconds     *float64   `json:"lag_seconds"`
	Segments       int        `json:"segments"`
	Bytes          int64      `json:"bytes"`
	Timelines      []Timeline `json:"timelines"`
	Gaps           []Gap      `json:"gaps"`
	// Snapshots counts the complete snapshots (those with a manifest), from
	// the listing.
	Snapshots int `json:"snapshots"`
	// Restorable is false when nothing can be restored: without a complete
	// snapshot there is no restore window, whatever oplog was captured.
	// (`rewind list` shows the windows themselves; it reads the manifests.)
	Restorable bool `json:"restorable"`
	// Warnings say what needs doing, one line each; never null.
	Warnings []string `json:"warnings"`
	Agent    *Agent   `json:"agent"`
	// LastDrill is the newest restore drill recorded in the repository
	// (null when none, or when it is encrypted and no identity was given).
	LastDrill *Drill `json:"last_drill"`
}

// NothingRestorable is the warning of a shard, or a repository, with no
// complete snapshot.
const NothingRestorable = "nothing is restorable: there is no snapshot, and a restore starts from one; take one with `rewind snapshot`, or let the agent take its first (snapshot.every)"

// NoOplog is the warning of a shard with snapshots, no oplog and no live
// agent: only the snapshots' own consistent points can be restored.
const NoOplog = "no oplog captured: only the snapshots' own points are restorable; start `rewind agent` for this repository so that every second after them is"

// Empty is the report of a repository with no shard yet: nothing captured,
// nothing restorable.
func Empty() Report {
	return Report{Timelines: []Timeline{}, Gaps: []Gap{}, Warnings: []string{NothingRestorable}}
}

// Load reads one shard's status from the repository (repo.Shards lists
// them: a shard may have only snapshots, or only a heartbeat); now decides
// whether the heartbeat is fresh.
func Load(ctx context.Context, r *repo.Repository, shard string, now time.Time) (Report, error) {
	s := Report{Shard: shard, Name: shard, State: StateNoAgent, Timelines: []Timeline{}, Gaps: []Gap{}, Warnings: []string{}}
	h, err := r.History(ctx, shard)
	if err != nil {
		return s, err
	}
	snaps, err := r.ListSnapshots(ctx, shard)
	if err != nil {
		return s, err
	}
	s.Snapshots, s.Restorable = len(snaps), len(snaps) > 0
	s.Timelines, s.Gaps = Timelines(h), Gaps(h)
	var newest optime.Timestamp
	for i, tl := range h.Timelines {
		if tl.Last.After(newest) {
			newest = tl.Last
		}
		s.Segments += s.Timelines[i].Segments
		s.Bytes += s.Timelines[i].Bytes
	}
	s.LastDurable, s.CoveredThrough = ToTS(newest), ToTS(newest)
	hb, err := r.ReadHeartbeat(ctx, shard)
	switch {
	case err == nil:
		alive := now.Sub(hb.Updated) < AliveFor
		s.State, s.Error = StateStopped, ""
		if alive {
			s.State = StateCapturing
			if hb.Error != "" {
				s.State, s.Error = StateFailing, hb.Error
			}
		}
		if c := hb.Covered(); c.After(newest) {
			s.CoveredThrough = ToTS(c)
		}
		s.Agent = &Agent{Host: hb.Host, PID: hb.PID, Version: hb.Version, Started: hb.Started,
			Updated: hb.Updated, Alive: alive, LagSeconds: hb.Lag.Seconds()}
		if alive {
			lag := hb.Lag.Seconds()
			s.LagSeconds = &lag
		}
	case !errors.Is(err, storage.ErrNotFound):
		s.Warnings = append(s.Warnings, fmt.Sprintf("the agent's heartbeat cannot be read (%v): whether an agent runs is unknown; `rewind verify` checks the repository", err))
	}
	s.loadDrill(ctx, r, shard)
	switch {
	case !s.Restorable:
		s.Warnings = append(s.Warnings, NothingRestorable)
	case s.Segments == 0 && (s.Agent == nil || !s.Agent.Alive):
		s.Warnings = append(s.Warnings, NoOplog)
	}
	return s, nil
}

// Timelines converts a history's timelines.
func Timelines(h repo.History) []Timeline {
	out := []Timeline{}
	for _, tl := range h.Timelines {
		tj := Timeline{ID: tl.ID, First: ToTS(tl.First), Last: ToTS(tl.Last), Segments: len(tl.Segments)}
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

// Gaps converts a history's gaps.
func Gaps(h repo.History) []Gap {
	out := []Gap{}
	for _, g := range h.Gaps {
		out = append(out, Gap{Before: ToTS(g.Before), After: ToTS(g.After), Detected: g.Detected})
	}
	return out
}
