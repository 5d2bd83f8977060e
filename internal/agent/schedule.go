package agent

import (
	"context"
	"log/slog"
	"time"

	"github.com/rewind-backup/rewind/internal/runs"
	"github.com/rewind-backup/rewind/internal/snapshot"
)

// scheduler takes snapshots every snapshot.every, and at once after a
// recorded gap (the restore window cannot cross a gap: a new base is needed).
// The agent captures the oplog itself, so a snapshot only waits for the
// capture to store its range. A failed snapshot is logged and retried; it
// never stops capture.
type scheduler struct {
	w        *writer
	every    time.Duration
	parallel int
	log      *slog.Logger
	now      func() time.Time
	runs     *runs.Recorder
}

func (a *Agent) scheduler(w *writer) *scheduler {
	return &scheduler{w: w, every: a.Config.Snapshot.Every.Std(), parallel: a.Config.Snapshot.Parallel,
		log: a.Log, now: time.Now, runs: a.runs}
}

// run takes scheduled snapshots until ctx ends. With no schedule
// (snapshot.every: 0) it does nothing, gaps included.
func (s *scheduler) run(ctx context.Context) error {
	if s.every <= 0 {
		return nil
	}
	poll := min(max(s.every/4, time.Second), 10*time.Second)
	retry := time.Time{}
	for {
		if due, why := s.due(ctx); due && !s.now().Before(retry) {
			s.log.Info("taking a scheduled snapshot", "reason", why)
			started := time.Now()
			_, err := snapshot.Take(ctx, s.w.src, s.w.repo, snapshot.Options{Parallel: s.parallel,
				Capture: snapshot.CaptureByAgent, Log: s.log})
			if ctx.Err() != nil {
				return nil // stopped: neither a success nor a failure
			}
			s.runs.Record(runs.Snapshot, started, err)
			if err != nil {
				retry = s.now().Add(min(s.every, 5*time.Minute))
				s.log.Error("scheduled snapshot failed; retrying later", "err", err, "retry_at", retry.Format(time.RFC3339))
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

// due says whether a snapshot should be taken now, and why.
func (s *scheduler) due(ctx context.Context) (bool, string) {
	refs, err := s.w.repo.ListSnapshots(ctx, s.w.shard)
	if err != nil {
		s.log.Warn("list snapshots failed", "err", err)
		return false, ""
	}
	if len(refs) == 0 {
		return true, "the repository has no snapshot"
	}
	// Snapshots taken by hand count too.
	started := refs[len(refs)-1].Started()
	gaps, err := s.w.repo.ListGaps(ctx, s.w.shard)
	if err != nil {
		s.log.Warn("list gaps failed", "err", err)
	} else if n := len(gaps); n > 0 && gaps[n-1].Detected.After(started) {
		return true, "a gap in the oplog was recorded after the newest snapshot started"
	}
	if s.now().Sub(started) >= s.every {
		return true, "snapshot.every elapsed"
	}
	return false, ""
}
