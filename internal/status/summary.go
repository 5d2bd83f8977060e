package status

import (
	"context"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Summary is one repository at a glance: a line of rewind server's
// deployments list (GET /api/v1/deployments).
type Summary struct {
	// LastDurable is the newest restorable second's oplog timestamp (a
	// cluster's: its shards' least covered-through time).
	LastDurable *TS `json:"last_durable"`
	// LagSeconds is the capture lag the agent's heartbeat reports.
	LagSeconds *float64 `json:"lag_seconds"`
	// RestoreWindow is the newest span of windows that touch: every
	// second in it is restorable (null: nothing restorable, or the
	// manifests cannot be read without the identity).
	RestoreWindow *Window `json:"restore_window"`
	// LastSnapshot is the newest complete snapshot (null when none).
	LastSnapshot *Snapshot `json:"last_snapshot"`
	// BytesStored is the oplog segments' stored size plus the snapshots'
	// document bytes (before compression, as their manifests record them).
	BytesStored int64 `json:"bytes_stored"`
	// Warnings are the status's warnings, one line each.
	Warnings []string `json:"warnings"`
}

// Summarize reads a repository's summary: its status (listings and
// heartbeats), then its catalog (the manifests) for the window and the
// snapshots. An unreadable catalog leaves those null and says so in
// Warnings; an unreadable repository is an error.
func Summarize(ctx context.Context, r *repo.Repository, now time.Time) (Summary, error) {
	ov, err := LoadOverview(ctx, r, "", now)
	if err != nil {
		return Summary{}, err
	}
	s := Summary{LastDurable: ov.LastDurable, LagSeconds: ov.LagSeconds, Warnings: ov.Warnings}
	for _, sh := range ov.Shards {
		s.BytesStored += sh.Bytes
	}
	c, err := catalog.Load(ctx, r)
	if err != nil {
		s.Warnings = append(s.Warnings, "the catalog cannot be read: "+err.Error())
		return s, nil
	}
	windows := c.ClusterWindows()
	for _, sh := range c.Shards {
		if c.Cluster == nil {
			windows = append(windows, sh.Span()...)
		}
		for _, sn := range sh.Snapshots {
			s.BytesStored += sn.Bytes
			if s.LastSnapshot == nil || sn.Finished.After(s.LastSnapshot.Finished) {
				v := Snapshots([]catalog.Snapshot{sn})[0]
				s.LastSnapshot = &v
			}
		}
	}
	for _, w := range Windows(windows) {
		if s.RestoreWindow == nil || w.To.T > s.RestoreWindow.To.T ||
			(w.To.T == s.RestoreWindow.To.T && w.To.I > s.RestoreWindow.To.I) {
			s.RestoreWindow = &w
		}
	}
	return s, nil
}
