package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
)

// HeartbeatFresh is how recent an agent's heartbeat must be for the agent to
// count as capturing.
const HeartbeatFresh = 30 * time.Second

// oplogSettle is how long after the copy a source without AtomicOplog
// (FerretDB) is given to log the writes the copy saw, before the end is read
// from its oplog (see oplog.SettleMargin: capture's covered-through keeps
// the same margin).
const oplogSettle = oplog.SettleMargin

// oplogRange makes a snapshot's oplog range [start, end] durable. It is the
// one place that decides where the range starts and ends and who captures
// it: a running agent (the snapshot waits until the repository covers the
// range), or the snapshot itself, holding the writer lock. Its own capture
// runs during the copy on a source that can seek its oplog by ts, so a long
// copy cannot outlive the oplog window; on one that cannot (each read scans
// the whole oplog) it runs once, after the copy, and the newest entry of its
// first complete read (which began after the copy) is the end, sparing
// another full scan.
type oplogRange struct {
	src    *source.Source
	repo   *repo.Repository
	shard  string
	o      Options
	writer *repo.Lock // held: this snapshot captures the range; nil: an agent does
	start  optime.Timestamp
	// fromEmpty: the oplog was empty at the start, which is then an anchor
	// from the server's clock (see repo.Manifest.FromEmptyOplog).
	fromEmpty bool

	mu  sync.Mutex
	end optime.Timestamp // set once; zero until known
	// endAfter: only an oplog read begun at or after this time may give the
	// end (the copy's end, plus oplogSettle without AtomicOplog).
	endAfter time.Time
	cancel   context.CancelFunc
	done     chan error // the own capture's result; nil unless it runs
	// deferred is set when the start is decided after the copy (see
	// deferredStart); start is zero until then.
	deferred *deferredStart
	// agentMark is the oplog's mark when the start came from an agent's
	// poll (see fromAgentPoll); nil otherwise.
	agentMark *source.OplogMark
}

// newOplogRange notes the range's start: the oplog's newest entry, or for
// an empty oplog (a new deployment) the server's clock, so that every entry
// logged later is replayed over the copy.
func newOplogRange(ctx context.Context, src *source.Source, r *repo.Repository, o Options, writer *repo.Lock) (*oplogRange, error) {
	g := &oplogRange{src: src, repo: r, shard: o.shardOf(src), o: o, writer: writer}
	if deferrable(src, writer, o) {
		return g, g.beginDeferred(ctx)
	}
	if writer == nil {
		// The agent's capture proved its source continues the stored
		// timeline, not this snapshot's source: prove this one does.
		if err := oplog.CheckContinues(ctx, r, g.shard, src); err != nil {
			return nil, err
		}
	}
	if g.fromAgentPoll(ctx) {
		return g, nil
	}
	var err error
	if g.start, err = src.NewestEntry(ctx); err != nil {
		return nil, fmt.Errorf("note the snapshot's start: %w", err)
	}
	if g.start.IsZero() {
		g.fromEmpty = true
		if g.start, err = src.ClockTimestamp(ctx); err != nil {
			return nil, fmt.Errorf("note the snapshot's start on an empty oplog: %w", err)
		}
		return g, nil
	}
	if err := waitMajority(ctx, src, g.start, o.WaitTimeout); err != nil {
		return nil, err
	}
	return g, nil
}

// waitMajority waits until a majority of the replica set has written
// start. The copy reads with readConcern "majority", which sees the
// majority commit point, not the newest entry: a write logged before start
// but not yet majority-committed would be missing from the copy, and the
// replay, which begins at start, would never bring it back. Secondaries
// usually trail by milliseconds; a set whose majority is down makes the
// snapshot wait up to timeout and fail, saying why.
func waitMajority(ctx context.Context, src *source.Source, start optime.Timestamp, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		committed, err := src.MajorityCommitted(ctx)
		if err != nil {
			return fmt.Errorf("wait for the snapshot's start to be majority-committed: %w", err)
		}
		if !committed.Before(start) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the snapshot's start %s is not majority-committed after %s (majority commit point %s): check the replica set's secondaries with rs.status()", start, timeout, committed)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// endFromCapture reports whether the own capture's first complete read
// gives the end (see oplogRange).
func (g *oplogRange) endFromCapture() bool { return g.writer != nil && !g.src.Caps.SeekByTS }

// setEnd records the end once. No entry after the start (an oplog still
// empty) makes the end the start: the copy needs nothing replayed.
func (g *oplogRange) setEnd(e optime.Timestamp) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if e.Before(g.start) {
		e = g.start
	}
	if g.end.IsZero() {
		g.end = e
	}
}

// endFromRead takes the end from a poll of the own capture, once a poll
// that began late enough after the copy (see endAfter) has ended.
func (g *oplogRange) endFromRead(last optime.Timestamp, began time.Time) {
	g.mu.Lock()
	after := g.endAfter
	g.mu.Unlock()
	if !after.IsZero() && !began.Before(after) {
		g.setEnd(last)
	}
}

func (g *oplogRange) endKnown() (optime.Timestamp, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.end, !g.end.IsZero()
}

// empty reports whether the range holds no entry at all: the oplog was
// empty at the start and still is at the end.
func (g *oplogRange) empty(end optime.Timestamp) bool { return g.fromEmpty && end == g.start }

// begin starts the own capture before the copy where the source allows.
func (g *oplogRange) begin(ctx context.Context) {
	if g.writer != nil && g.src.Caps.SeekByTS {
		g.runCapture(ctx)
	}
}

func (g *oplogRange) runCapture(ctx context.Context) {
	if g.done != nil {
		return
	}
	cctx, cancel := context.WithCancel(ctx)
	g.cancel, g.done = cancel, make(chan error, 1)
	rc := &rangeCapture{src: g.src, repo: g.repo, lock: g.writer, shard: g.shard, log: g.o.Log, fromEmpty: g.fromEmpty}
	if g.endFromCapture() {
		rc.caughtUp = g.endFromRead
	}
	go func() { g.done <- rc.run(cctx, g.start, g.endKnown) }()
}

// finish notes the end (unless the capture gives it) and returns once
// [start, end] is durable: captured by this snapshot, or by the agent.
func (g *oplogRange) finish(ctx context.Context) (optime.Timestamp, error) {
	after := time.Now()
	if !g.src.Caps.AtomicOplog {
		after = after.Add(oplogSettle)
	}
	g.mu.Lock()
	g.endAfter = after
	g.mu.Unlock()
	if g.deferred != nil {
		end, quiet, err := g.finishDeferred(ctx, after)
		if err != nil || quiet {
			return end, err
		}
	} else if !g.endFromCapture() {
		select {
		case <-ctx.Done():
			return optime.Zero, ctx.Err()
		case <-time.After(time.Until(after)):
		}
		e, err := g.newestAtEnd(ctx)
		if err != nil {
			return optime.Zero, fmt.Errorf("note the snapshot's end: %w", err)
		}
		g.setEnd(e)
	}
	if g.writer == nil {
		end, _ := g.endKnown()
		if g.empty(end) {
			return end, nil
		}
		g.o.Log.Info("waiting for the agent to make the snapshot's oplog range durable", "start", g.start.String(), "end", end.String())
		return end, waitCovered(ctx, g.repo, g.shard, g.start, end, g.fromEmpty, g.o.WaitTimeout)
	}
	return g.captureRange(ctx)
}

// captureRange runs this snapshot's own capture of the range (the writer
// lock is held) and returns the range's end once it is durable.
func (g *oplogRange) captureRange(ctx context.Context) (optime.Timestamp, error) {
	g.runCapture(ctx)
	g.o.Log.Info("capturing the snapshot's oplog range (no agent is running)", "start", g.start.String())
	err := <-g.done
	g.done = nil
	if err != nil {
		return optime.Zero, fmt.Errorf("capture the snapshot's oplog range: %w", err)
	}
	end, ok := g.endKnown()
	if !ok {
		return optime.Zero, errors.New("the snapshot's oplog range capture ended without reading the oplog's newest entry")
	}
	return end, nil
}

// stop ends a capture still running (after an error) and waits for it.
func (g *oplogRange) stop() {
	if g.deferred != nil {
		g.deferred.cancel()
	}
	if g.done != nil {
		g.cancel()
		<-g.done
		g.done = nil
	}
}

// covered reports whether one timeline of h holds every entry a snapshot
// copied across [start, end] needs replayed (repo.Timeline.Covers).
func covered(h repo.History, start, end optime.Timestamp, fromEmpty bool) bool {
	for _, tl := range h.Timelines {
		if tl.Covers(start, end, fromEmpty) {
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
func waitCovered(ctx context.Context, r *repo.Repository, shard string, start, end optime.Timestamp, fromEmpty bool, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		h, err := r.History(ctx, shard)
		if err != nil {
			return err
		}
		if covered(h, start, end, fromEmpty) {
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
	src   *source.Source
	repo  *repo.Repository
	lock  *repo.Lock
	shard string
	log   *slog.Logger
	sink  *oplog.RepoSink
	// fromEmpty: the oplog was empty at the snapshot's start, so a new
	// timeline reads it from its first entry (oplog.Resume.FromStart).
	fromEmpty bool
	// caughtUp, when set, receives the newest entry read each time the
	// capture has read all the oplog held when its read began (FerretDB).
	caughtUp func(optime.Timestamp, time.Time)
	// through: capture until the stored oplog is proven complete through
	// the end (oplog.Stats.CoveredThrough), not until an entry at or after
	// it is read: a cluster snapshot's idle shard has none. covered is
	// then what was proven.
	through bool
	covered optime.Timestamp
}

// run captures from the repository's resume point (or from start, if the
// repository has nothing or the resume point fell off the oplog) until the
// range [start, end()] is covered; end() reports false until the copy ends.
func (rc *rangeCapture) run(ctx context.Context, start optime.Timestamp, end func() (optime.Timestamp, bool)) error {
	sink, resume, err := oplog.NewRepoSink(ctx, rc.repo, rc.shard, rc.src)
	if err != nil {
		return fmt.Errorf("capture the snapshot's oplog range: %w", err)
	}
	rc.sink = sink
	if resume.Timeline == "" {
		resume = rc.fromStart(start)
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
		if gap.FirstAfter.After(start) && !rc.fromEmpty {
			return fmt.Errorf("the source's oplog no longer holds the snapshot's start %s (its oldest entry is %s): the copy took longer than the oplog window; enlarge the oplog or run the agent continuously", start, gap.FirstAfter)
		}
		rc.log.Warn("the repository's resume point fell off the oplog; capturing from the snapshot's start on a new timeline",
			"last_before", gap.LastBefore.String(), "start", start.String())
		resume = rc.fromStart(start)
	}
}

// fromStart is where a new timeline for the range begins: at the start
// (inclusive), or at the oplog's first entry when it was empty.
func (rc *rangeCapture) fromStart(start optime.Timestamp) oplog.Resume {
	if rc.fromEmpty {
		return oplog.Resume{Inclusive: true, FromStart: true}
	}
	return oplog.Resume{After: start, Inclusive: true}
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
	if rc.through && !rc.src.Caps.AtomicOplog {
		c.CaughtUp = stats.NoteCaughtUp
	}
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
		reached := !stats.LastRead().Before(e)
		if rc.through {
			rc.covered = stats.CoveredThrough()
			reached = !rc.covered.Before(e)
		}
		if reached || rc.fromEmpty && e == start {
			finished = true
			stop()
			continue
		}
		// The range may already be stored (the repository was ahead of
		// end): then no entry at or after end may ever be read.
		if time.Since(lastListed) > time.Second {
			lastListed = time.Now()
			if h, err := rc.repo.History(ctx, rc.shard); err == nil && covered(h, start, e, rc.fromEmpty) {
				finished, rc.covered = true, e
				stop()
			}
		}
	}
}

// checkCovered confirms the stored timeline holds the range.
func (rc *rangeCapture) checkCovered(ctx context.Context, start optime.Timestamp, end func() (optime.Timestamp, bool)) error {
	e, _ := end()
	if rc.through {
		return nil // proven by covered-through, which counts only what is stored
	}
	if rc.fromEmpty && e == start {
		return nil // the range holds no entry
	}
	h, err := rc.repo.History(ctx, rc.shard)
	if err != nil {
		return fmt.Errorf("read the repository's timeline: %w", err)
	}
	if !covered(h, start, e, rc.fromEmpty) {
		return fmt.Errorf("the captured oplog does not cover [%s, %s]: storage may have refused uploads; re-run the snapshot", start, e)
	}
	return nil
}
