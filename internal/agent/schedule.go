package agent

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
	"github.com/rewind-backup/rewind/internal/snapshot"
)

// scheduler takes snapshots: a base snapshot at start when no snapshot
// precedes the timeline the agent captures (without one, the oplog it
// captures restores nothing), then every snapshot.every, and at once after a
// recorded gap (the restore window cannot cross a gap: a new base is
// needed). The agent captures the oplog itself, so a snapshot only waits for
// the capture to store its range. A failed snapshot is logged and retried;
// it never stops capture. snapshot.every 0 turns every automatic snapshot
// off, the base one included.
type scheduler struct {
	w        *writer
	every    time.Duration
	parallel int
	log      *slog.Logger
	now      func() time.Time
	runs     *runs.Recorder
	// cluster is set for a sharded cluster: cluster snapshots are taken.
	cluster *clusterSnapshots
	// checkAt is when the repository is next listed to decide (the newest
	// snapshot's start plus every); timeline is the one capture wrote at
	// the last decision. Between decisions only memory is read: an idle
	// deployment costs its storage no request (rewind server runs many).
	checkAt  time.Time
	timeline string
}

// recheckEvery bounds the wait between two listings: a snapshot deleted by
// hand is noticed within it.
const recheckEvery = time.Hour

func (a *Agent) scheduler(w *writer) *scheduler {
	s := &scheduler{w: w, every: a.Config.Snapshot.Every.Std(), parallel: a.Config.Snapshot.Parallel,
		log: a.Log, now: time.Now, runs: a.runs}
	if w.cluster != nil {
		s.cluster = &clusterSnapshots{w: w, router: routerOf(a)}
	}
	return s
}

// run takes snapshots until ctx ends.
func (s *scheduler) run(ctx context.Context) error {
	if s.every <= 0 {
		s.log.Warn("snapshot.every is 0: the agent takes no snapshot, so the oplog it captures is restorable only past snapshots taken by hand (`rewind snapshot`)")
		return nil
	}
	base, why := s.firstDue(ctx)
	poll := min(max(s.every/4, time.Second), 10*time.Second)
	retry := time.Time{}
	for {
		if !base {
			base, why = s.nextDue(ctx)
		}
		if base && !s.now().Before(retry) {
			s.log.Info("taking a scheduled snapshot", "reason", why)
			started := time.Now()
			err := s.take(ctx)
			if ctx.Err() != nil {
				return nil // stopped: neither a success nor a failure
			}
			s.runs.Record(runs.Snapshot, started, err)
			base = err != nil
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

// firstDue says whether a snapshot is needed when the agent starts.
func (s *scheduler) firstDue(ctx context.Context) (bool, string) {
	if s.cluster != nil {
		return s.cluster.due(ctx, s)
	}
	return s.needsBase(ctx)
}

// nextDue says whether a snapshot is needed now.
func (s *scheduler) nextDue(ctx context.Context) (bool, string) {
	if s.cluster != nil {
		return s.cluster.due(ctx, s)
	}
	// A gap starts a new timeline in this process: that, or the time
	// coming, is all that can make a snapshot due.
	tl := s.w.stats.Timeline()
	if tl == s.timeline && s.now().Before(s.checkAt) {
		return false, ""
	}
	s.timeline = tl
	due, why, next := s.due(ctx)
	s.checkAt = next
	if limit := s.now().Add(recheckEvery); next.After(limit) {
		s.checkAt = limit
	}
	return due, why
}

// take takes one snapshot: a cluster snapshot for a cluster. The agent
// captures the oplog itself, so the snapshot only waits for it.
func (s *scheduler) take(ctx context.Context) error {
	// A snapshot's copy buffers and encoders raise the live heap for its
	// length, and the collector's next goal to twice that; the agent then
	// allocates slowly and its heap stays at that high water for minutes
	// after the snapshot (its RSS with it: the soak saw one process go
	// from 52 to 101 MiB while its heap after each collection stayed at
	// 24-31 MB). Collecting and returning the memory at the end brings the
	// goal back to what capture needs.
	defer debug.FreeOSMemory()
	if s.cluster != nil {
		return s.cluster.take(ctx, s)
	}
	_, err := snapshot.Take(ctx, s.w.src, s.w.repo, snapshot.Options{Parallel: s.parallel,
		Capture: snapshot.CaptureByAgent, Log: s.log})
	return err
}

// needsBase says whether no snapshot precedes the timeline capture goes on
// with: a new timeline (nothing stored, or a gap at start) always needs
// one; a continued one needs one unless some snapshot opens a restore
// window on it. An encrypted repository whose manifests the agent cannot
// read falls back to "the shard has no snapshot at all".
func (s *scheduler) needsBase(ctx context.Context) (bool, string) {
	tl := s.w.resume.Timeline
	if tl == "" && s.w.resume.FromStart && s.emptyOplogSnapshot(ctx) {
		return false, "" // the timeline from the oplog's start covers it
	}
	if tl == "" {
		return true, "capture starts a new timeline and no snapshot precedes it"
	}
	refs, ok := s.snapshots(ctx)
	if !ok || len(refs) == 0 {
		return ok, "the repository has no snapshot"
	}
	sh, err := catalog.LoadShard(ctx, s.w.repo, s.w.shard, refs)
	if errors.Is(err, repo.ErrNeedIdentity) {
		return false, ""
	}
	if err != nil {
		s.log.Warn("read the repository's restore windows failed", "err", err)
		return false, ""
	}
	for _, w := range sh.Windows {
		if t, ok := sh.Timeline(w.Timeline); ok && t.Stored == tl {
			return false, ""
		}
	}
	return true, "no snapshot precedes the timeline capture continues"
}

// emptyOplogSnapshot reports whether a snapshot of this shard was taken
// while the source's oplog was empty (a new deployment snapshotted by hand
// before the agent ran): a timeline captured from the oplog's first entry
// replays over it, so it needs no base snapshot of its own.
func (s *scheduler) emptyOplogSnapshot(ctx context.Context) bool {
	refs, ok := s.snapshots(ctx)
	if !ok {
		return false
	}
	for _, ref := range refs {
		m, err := s.w.repo.ReadManifest(ctx, ref.Shard, ref.ID)
		if err == nil && m.FromEmptyOplog {
			return true
		}
	}
	return false
}

// snapshots lists the shard's snapshots; ok is false (and the failure
// logged) when the listing failed: then nothing is decided this round.
func (s *scheduler) snapshots(ctx context.Context) (refs []repo.SnapshotRef, ok bool) {
	refs, err := s.w.repo.ListSnapshots(ctx, s.w.shard)
	if err != nil {
		s.log.Warn("list snapshots failed", "err", err)
		return nil, false
	}
	return refs, true
}

// due says whether a snapshot should be taken now, and why, and when to
// decide next (when every elapses; now when it could not be read).
func (s *scheduler) due(ctx context.Context) (bool, string, time.Time) {
	refs, ok := s.snapshots(ctx)
	if !ok || len(refs) == 0 {
		return ok, "the repository has no snapshot", s.now()
	}
	// Snapshots taken by hand count too.
	started := refs[len(refs)-1].Started()
	gaps, err := s.w.repo.ListGaps(ctx, s.w.shard)
	if err != nil {
		s.log.Warn("list gaps failed", "err", err)
	} else if n := len(gaps); n > 0 && gaps[n-1].Detected.After(started) {
		return true, "a gap in the oplog was recorded after the newest snapshot started", s.now()
	}
	if s.now().Sub(started) >= s.every {
		return true, "snapshot.every elapsed", s.now()
	}
	return false, "", started.Add(s.every)
}
