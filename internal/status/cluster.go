package status

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Shard states in Report.State.
const (
	// StateCapturing: the shard's agent is alive and its capture works.
	StateCapturing = "capturing"
	// StateFailing: the agent is alive but the shard's capture reports an
	// error (Report.Error).
	StateFailing = "failing"
	// StateStopped: the shard's last heartbeat is older than AliveFor.
	StateStopped = "stopped"
	// StateNoAgent: no agent ever captured the shard.
	StateNoAgent = "no_agent"
)

// Overview is the status of a whole repository: `rewind status --json` and
// GET /api/v1/status. For a replica set, the top-level fields are its one
// shard's; for a sharded cluster they are the cluster's, with last_durable
// the least covered-through time of its shards (the cluster is restorable
// through it: every shard's oplog is complete up to there).
type Overview struct {
	Report
	// Cluster is set for a sharded cluster: its shards as last recorded.
	Cluster *ClusterInfo `json:"cluster,omitempty"`
	// Shards are every shard's reports, never null.
	Shards []Report `json:"shards"`
}

// ClusterInfo is a sharded cluster's recorded topology.
type ClusterInfo struct {
	Shards       []string `json:"shards"`
	ConfigServer string   `json:"config_server,omitempty"`
	// TopologyChanged is when the shards last changed while captured,
	// nil when never.
	TopologyChanged *time.Time `json:"topology_changed,omitempty"`
}

// LoadOverview reads every shard's status. primary, when not "", is the
// shard whose report a replica set's top level shows (the agent's own);
// else the first.
func LoadOverview(ctx context.Context, r *repo.Repository, primary string, now time.Time) (Overview, error) {
	o := Overview{Shards: []Report{}}
	shards, err := r.Shards(ctx)
	if err != nil {
		return o, err
	}
	info, members, err := loadCluster(ctx, r)
	if err != nil {
		return o, err
	}
	o.Cluster = info
	for _, sh := range members {
		if !slices.Contains(shards, sh) {
			shards = append(shards, sh) // recorded, nothing stored yet
		}
	}
	slices.Sort(shards)
	for _, sh := range shards {
		s, err := Load(ctx, r, sh, now)
		if err != nil {
			return o, err
		}
		o.Shards = append(o.Shards, s)
	}
	switch {
	case info != nil:
		o.Report = clusterReport(o.Shards, members)
	case len(o.Shards) == 0:
		o.Report = Empty()
	default:
		o.Report = o.Shards[0]
		for _, s := range o.Shards {
			if s.Shard == primary {
				o.Report = s
			}
		}
	}
	return o, nil
}

// loadCluster reads the recorded topology: nil for a replica set
// repository. members are the shards and, when recorded, "config".
func loadCluster(ctx context.Context, r *repo.Repository) (*ClusterInfo, []string, error) {
	recs, err := r.ListTopology(ctx)
	if err != nil {
		return nil, nil, err
	}
	c := r.Config().Source.Cluster
	info := &ClusterInfo{}
	if n := len(recs); n > 0 {
		c = &recs[n-1].Cluster
		for _, t := range recs {
			if len(t.Added)+len(t.Removed) > 0 {
				at := t.At
				info.TopologyChanged = &at
			}
		}
	}
	if c == nil {
		return nil, nil, nil
	}
	info.Shards, info.ConfigServer = c.Names(), c.ConfigServer
	members := slices.Clone(info.Shards)
	if !slices.Contains(members, "config") {
		members = append(members, "config")
	}
	return info, members, nil
}

// clusterReport is the cluster's line: last_durable is the least
// covered-through time over its members (none while a member has none),
// lag the largest, restorable only if every data shard has a snapshot (a
// cluster restore starts each shard from its own; the config server's data
// is not restored).
func clusterReport(shards []Report, members []string) Report {
	rep := Report{Timelines: []Timeline{}, Gaps: []Gap{}, Warnings: []string{}}
	var least optime.Timestamp
	known := true
	var lag *float64
	var bare []string
	for _, s := range shards {
		if !slices.Contains(members, s.Shard) || (s.Shard == "config" && s.Agent == nil && s.LastDurable == nil) {
			continue // another shard's leftovers, or a config server never given
		}
		ts := s.covered()
		if ts.IsZero() {
			known = false
		} else if least.IsZero() || ts.Before(least) {
			least = ts
		}
		if s.Shard != "config" && !s.Restorable {
			bare = append(bare, s.Shard)
		}
		if s.LagSeconds != nil && (lag == nil || *s.LagSeconds > *lag) {
			lag = s.LagSeconds
		}
		rep.Segments += s.Segments
		rep.Bytes += s.Bytes
	}
	if known {
		rep.LastDurable = ToTS(least)
	}
	rep.LagSeconds = lag
	rep.Restorable = len(bare) == 0
	if !rep.Restorable {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s: shard %s has none", ClusterNotRestorable, strings.Join(bare, ", ")))
	}
	return rep
}

// ClusterNotRestorable begins the warning of a cluster repository in which
// a shard has no snapshot yet.
const ClusterNotRestorable = "the cluster is not restorable yet: a cluster restore starts every shard from a snapshot of its own; take a cluster snapshot (rewind snapshot through mongos, or with --shard), or let the agent take its first"

// covered is the report's covered-through time as a timestamp.
func (s Report) covered() optime.Timestamp {
	if s.CoveredThrough == nil {
		return optime.Zero
	}
	return optime.Timestamp{T: s.CoveredThrough.T, I: s.CoveredThrough.I}
}
