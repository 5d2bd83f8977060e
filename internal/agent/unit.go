package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/source"
)

// unit is the capture of one shard: a replica set's agent has one, a
// cluster's has one per shard and one for the config server. Each reads
// its own source into its own shard's timelines, through its own spool,
// from its own resume point; the repository and its writer lock are the
// writer's, shared.
type unit struct {
	src *source.Source
	// shard is the id the unit's objects are stored under: a replica
	// set's source.Shard(), a cluster shard's name ("config" for the
	// config server).
	shard  string
	spool  *oplog.Spool
	resume oplog.Resume
	stats  *oplog.Stats
	// sink stores batches; it knows where the stored timeline ends.
	sink *oplog.RepoSink
	// lockHeld is the writer's: false while the repository lock is lost.
	lockHeld *atomic.Bool
	log      *slog.Logger
}

// openUnit opens the unit's spool (dir) and finds where it resumes.
func (w *writer) openUnit(ctx context.Context, u *unit, dir string, spoolMax int64) error {
	var err error
	if u.spool, err = oplog.OpenSpool(dir, spoolMax); err != nil {
		return err
	}
	u.lockHeld = &w.held
	if err := u.findResume(ctx, w); err != nil {
		return fmt.Errorf("shard %s: %w", u.shard, err)
	}
	return nil
}

// findResume reads the resume point from the repository and the spool: no
// other state is kept.
func (u *unit) findResume(ctx context.Context, w *writer) error {
	sink, resume, err := oplog.NewRepoSink(ctx, w.repo, u.shard, u.src)
	if err != nil {
		return fmt.Errorf("resume capture: %w", err)
	}
	u.sink, u.resume = sink, resume
	if b, ok, err := u.spool.Newest(); err != nil {
		return err
	} else if ok && b.Last.After(u.resume.After) {
		u.resume = oplog.Resume{Timeline: b.Timeline, After: b.Last}
	}
	if u.resume.Timeline == "" {
		// Nothing stored yet: start at the newest entry, or at the oplog's
		// start when it is empty, so a snapshot of the new deployment can
		// be replayed over.
		u.resume, err = oplog.Begin(ctx, u.src)
	}
	return err
}

// WriteSegment implements oplog.Sink, refusing while the writer lock is lost.
func (u *unit) WriteSegment(ctx context.Context, b oplog.Batch) error {
	if !u.lockHeld.Load() {
		return errors.New("the repository writer lock is not held (storage was unreachable for too long); re-acquiring it")
	}
	return u.sink.WriteSegment(ctx, b)
}

// capture runs the unit's pipeline, starting a new timeline after every gap.
func (a *Agent) capture(ctx context.Context, u *unit) error {
	resume := u.resume
	for {
		c := &oplog.Capture{
			Source: u.src, Sink: u, Spool: u.spool, Resume: resume,
			FlushInterval: a.Config.Capture.FlushInterval.Std(),
			MaxBatchBytes: int(a.Config.Capture.MaxSegmentBytes),
			DrainTimeout:  10 * time.Second,
			UploadFloor:   a.Config.Capture.UploadStallAfter.Std(),
			Log:           u.log, Stats: u.stats,
			// A full or read-only spool pauses capture, never ends it.
			PauseOnSpoolError: true,
		}
		if !u.src.Caps.AtomicOplog {
			// No no-op entries to prove an idle oplog complete: each
			// complete poll does (covered-through).
			c.CaughtUp = u.stats.NoteCaughtUp
			c.Marked = u.stats.NotePollMark
		}
		err := c.Run(ctx)
		var gap *oplog.GapError
		if !errors.As(err, &gap) {
			return err
		}
		u.log.Error("GAP in the oplog: entries were lost while capture was down; a new timeline starts and a new snapshot is needed to restore past it",
			"last_before", gap.LastBefore.String(), "first_after", gap.FirstAfter.String(),
			"lost_from", gap.LastBefore.Time().Format(time.RFC3339), "lost_to", gap.FirstAfter.Time().Format(time.RFC3339))
		resume = oplog.Resume{After: gap.FirstAfter, Inclusive: true}
	}
}

// spoolDir is the unit's spool: the agent's spool directory for a replica
// set (as before clusters), a subdirectory per shard for a cluster.
func spoolDir(base string, u *unit, cluster bool) string {
	if !cluster {
		return base
	}
	return filepath.Join(base, u.shard)
}
