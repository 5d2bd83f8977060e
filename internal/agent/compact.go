package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
)

// Compaction merges old small segments into large ones, so listings stay
// cheap while new segments stay small (a recovery point objective near one
// second means many small objects). The merged segment is written before the
// small ones are deleted, and ListSegments hides segments contained in
// another, so a reader never sees a hole or an overlap.
type compactor struct {
	w        *writer
	shard    string
	log      *slog.Logger
	every    time.Duration
	minAge   time.Duration
	target   int64
	canRead  bool
	now      func() time.Time
	onMerged func(n int)
}

// run compacts every c.every until ctx ends. Errors are logged, not fatal:
// compaction is housekeeping, capture must go on.
func (c *compactor) run(ctx context.Context) error {
	if c.every <= 0 {
		return nil
	}
	if !c.canRead {
		c.log.Info("segment compaction off: the repository is encrypted and the agent has no identity (set `identity:` to enable it)")
		return nil
	}
	t := time.NewTicker(c.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if _, err := c.once(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("segment compaction failed; will retry", "err", err)
		}
	}
}

// once merges what is old enough and returns how many segments it removed.
func (c *compactor) once(ctx context.Context) (int, error) {
	segs, err := c.w.repo.ListSegments(ctx, c.shard)
	if err != nil {
		return 0, err
	}
	cutoff := uint32(c.now().Add(-c.minAge).Unix())
	var old []repo.SegmentInfo
	for _, s := range segs {
		if s.Last.T >= cutoff {
			break
		}
		old = append(old, s)
	}
	plan := repo.PlanCompaction(old, c.target)
	if len(plan) == 0 {
		return 0, nil
	}
	lock := c.w.currentLock()
	if lock == nil {
		return 0, errors.New("the writer lock is not held")
	}
	// Prune deletes under the same lock: see pruner.once.
	c.w.deleteMu.Lock()
	defer c.w.deleteMu.Unlock()
	if err := lock.BeginDelete(ctx); err != nil {
		// A restore or verify is reading: try again later.
		return 0, err
	}
	defer func() { _ = lock.EndDelete(context.WithoutCancel(ctx)) }()
	removed := 0
	for _, run := range plan {
		if _, err := c.w.repo.CompactSegments(ctx, run); err != nil {
			return removed, err
		}
		removed += len(run)
	}
	c.log.Info("compacted oplog segments", "merged", removed, "into", len(plan))
	if c.onMerged != nil {
		c.onMerged(removed)
	}
	return removed, nil
}
