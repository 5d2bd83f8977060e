package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// HeartbeatFresh is how recent an agent's heartbeat must be for the agent to
// count as capturing.
const HeartbeatFresh = 30 * time.Second

// covered reports whether one timeline of h holds every entry in
// [start, end]: replaying from start to end is then possible.
func covered(h repo.History, start, end optime.Timestamp) bool {
	for _, tl := range h.Timelines {
		if !tl.First.After(start) && !tl.Last.Before(end) {
			return true
		}
	}
	return false
}

// agentCapturing reports whether an agent's heartbeat is fresh.
func agentCapturing(ctx context.Context, r *repo.Repository, shard string, now time.Time) (bool, error) {
	hb, err := r.ReadHeartbeat(ctx, shard)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return now.Sub(hb.Updated) < HeartbeatFresh, nil
}

// waitCovered polls the repository until [start, end] is covered, for up to
// timeout.
func waitCovered(ctx context.Context, r *repo.Repository, shard string, start, end optime.Timestamp, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		h, err := r.History(ctx, shard)
		if err != nil {
			return err
		}
		if covered(h, start, end) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the agent capturing this repository has not made the oplog up to %s durable within %s: check it with `rewind status`, or stop it and re-run so the snapshot captures the oplog itself",
				end, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// rangeCapture captures the oplog into the repository while no agent does,
// holding the writer lock, until the snapshot's range is durable.
type rangeCapture struct {
	src   *oplog.Source
	repo  *repo.Repository
	lock  *repo.Lock
	shard string
	log   *slog.Logger
	sink  *oplog.RepoSink
	// caughtUp, when set, receives the newest entry read each time the
	// capture has read all the oplog held when its read began (FerretDB).
	caughtUp func(optime.Timestamp)
}

// run captures from the repository's resume point (or from start, if the
// repository has nothing or the resume point fell off the oplog) until the
// range [start, end()] is covered; end() reports false until the copy ends.
func (rc *rangeCapture) run(ctx context.Context, start optime.Timestamp, end func() (optime.Timestamp, bool)) error {
	sink, resume, err := oplog.NewRepoSink(ctx, rc.repo, rc.shard, rc.src)
	if err != nil {
		return fmt.Errorf("read the repository's timeline: %w", err)
	}
	rc.sink = sink
	if resume.Timeline == "" {
		resume = oplog.Resume{After: start, Inclusive: true}
	}
	dir, err := os.MkdirTemp("", "rewind-snapshot-spool-")
	if err != nil {
		return fmt.Errorf("create spool: %w", err)
	}
	defer os.RemoveAll(dir)
	spool, err := oplog.OpenSpool(dir, 1<<30)
	if err != nil {
		return err
	}
	for {
		err := rc.capture(ctx, spool, resume, start, end)
		var gap *oplog.GapError
		if !errors.As(err, &gap) {
			return err
		}
		if gap.FirstAfter.After(start) {
			return fmt.Errorf("the source's oplog no longer holds the snapshot's start %s (its oldest entry is %s): the copy took longer than the oplog window; enlarge the oplog or run the agent continuously", start, gap.FirstAfter)
		}
		rc.log.Warn("the repository's resume point fell off the oplog; capturing from the snapshot's start on a new timeline",
			"last_before", gap.LastBefore.String(), "start", start.String())
		resume = oplog.Resume{After: start, Inclusive: true}
	}
}

// capture runs one oplog.Capture until it has read the range's end, then
// lets it flush and upload what it read. Stopping on the entry read, not on
// a listing of what is stored, spares a FerretDB source another full scan
// of its oplog (it cannot seek by ts).
func (rc *rangeCapture) capture(ctx context.Context, spool *oplog.Spool, resume oplog.Resume, start optime.Timestamp, end func() (optime.Timestamp, bool)) error {
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	stats := &oplog.Stats{}
	c := &oplog.Capture{Source: rc.src, Sink: rc.sink, Spool: spool, Resume: resume, Stats: stats,
		FlushInterval: 200 * time.Millisecond, MaxBatchBytes: 16 << 20, DrainTimeout: time.Minute, Log: rc.log,
		CaughtUp: rc.caughtUp}
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	finished := false
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	lastListed := time.Now()
	for {
		select {
		case err := <-done:
			switch {
			case err != nil:
				return err
			case ctx.Err() != nil:
				return ctx.Err()
			case !finished:
				return errors.New("oplog capture stopped before the snapshot's range was read")
			}
			return rc.checkCovered(ctx, start, end)
		case <-t.C:
		}
		e, ok := end()
		if !ok || finished {
			continue
		}
		if !stats.LastRead().Before(e) {
			finished = true
			stop()
			continue
		}
		// The range may already be stored (the repository was ahead of
		// end): then no entry at or after end may ever be read.
		if time.Since(lastListed) > time.Second {
			lastListed = time.Now()
			if h, err := rc.repo.History(ctx, rc.shard); err == nil && covered(h, start, e) {
				finished = true
				stop()
			}
		}
	}
}

// checkCovered confirms the stored timeline holds the range.
func (rc *rangeCapture) checkCovered(ctx context.Context, start optime.Timestamp, end func() (optime.Timestamp, bool)) error {
	e, _ := end()
	h, err := rc.repo.History(ctx, rc.shard)
	if err != nil {
		return fmt.Errorf("read the repository's timeline: %w", err)
	}
	if !covered(h, start, e) {
		return fmt.Errorf("the captured oplog does not cover [%s, %s]: storage may have refused uploads; re-run the snapshot", start, e)
	}
	return nil
}
