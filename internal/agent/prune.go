package agent

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/runs"
)

// pruner applies the retention policy every retention.prune_interval, under
// the agent's writer lock: the agent is the one writer, so pruning is one
// of its jobs (by hand, `rewind prune` takes the same lock).
type pruner struct {
	w       *writer
	log     *slog.Logger
	every   time.Duration
	policy  retention.Policy
	canRead bool
	now     func() time.Time
	runs    *runs.Recorder
}

func (a *Agent) pruner(w *writer) *pruner {
	rc := a.Config.Retention
	return &pruner{w: w, log: a.Log, every: rc.PruneInterval.Std(), canRead: w.canRead, now: time.Now, runs: a.runs,
		policy: retention.Policy{RestoreWindow: rc.RestoreWindow.Std(), Hourly: rc.Hourly, Daily: rc.Daily,
			Weekly: rc.Weekly, Monthly: rc.Monthly}}
}

// run prunes every p.every until ctx ends. Failures are logged and retried
// at the next tick: capture must go on. A reader holding the repository (a
// restore, a snapshot, verify) only postpones a prune: it is retried every
// minute, and counts as a failure (the prune_failed alert) only once
// readers have kept it from running for a whole interval.
func (p *pruner) run(ctx context.Context) error {
	if p.every <= 0 {
		return nil
	}
	if !p.canRead {
		p.log.Info("pruning off: the repository is encrypted and the agent has no identity to read manifests (set `identity:` to enable it)")
		return nil
	}
	var blockedSince time.Time
	for {
		wait := p.every
		if !blockedSince.IsZero() {
			wait = min(time.Minute, p.every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		started := time.Now()
		_, err := p.once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var locked *repo.LockedError
		if !errors.As(err, &locked) {
			blockedSince = time.Time{}
		} else if blockedSince.IsZero() {
			blockedSince = started
		}
		if locked != nil && time.Since(blockedSince) < p.every {
			p.log.Info("prune postponed: a reader holds the repository; retrying", "holder", locked.Holder.Purpose,
				"host", locked.Holder.Host, "pid", locked.Holder.PID, "in", min(time.Minute, p.every).String())
			continue
		}
		p.runs.Record(runs.Prune, started, err)
		if err != nil {
			p.log.Warn("prune failed; will retry", "err", err)
		}
	}
}

// once applies the policy now.
func (p *pruner) once(ctx context.Context) (retention.Result, error) {
	lock := p.w.currentLock()
	if lock == nil {
		return retention.Result{}, errors.New("the writer lock is not held")
	}
	// Compaction deletes under the same lock; its EndDelete would let
	// readers in under our feet, so the two never run at once.
	p.w.deleteMu.Lock()
	defer p.w.deleteMu.Unlock()
	return retention.Prune(ctx, p.w.repo, lock, p.policy, p.now(), p.log)
}
