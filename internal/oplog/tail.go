package oplog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/source"
)

// GapError reports that the source's oplog no longer holds the resume point:
// entries between LastBefore and FirstAfter were lost while capture was down.
type GapError struct {
	// LastBefore is the last entry captured before the gap.
	LastBefore optime.Timestamp
	// FirstAfter is the oldest entry the source still holds.
	FirstAfter optime.Timestamp
}

func (e *GapError) Error() string {
	return fmt.Sprintf("oplog gap: the source no longer holds entries after %s (%s); its oldest entry is %s (%s); a new snapshot is needed to restore past it",
		e.LastBefore, e.LastBefore.Time().Format(time.RFC3339), e.FirstAfter, e.FirstAfter.Time().Format(time.RFC3339))
}

// Tailer reads the source's oplog in order, strictly after a resume point,
// and hands on only entries that a majority of the replica set has written.
type Tailer struct {
	Source *source.Source
	// After is the last entry already captured. Zero starts at the newest
	// entry of the oplog, which is then the first entry captured.
	After optime.Timestamp
	// Inclusive makes After itself the first entry passed on (a new
	// timeline starting at the oldest entry left after a gap).
	Inclusive bool
	// FromStart reads from the oplog's first entry (After is ignored): the
	// oplog was empty when capture began.
	FromStart bool
	// BatchSize is the cursor batch size; small values lower latency.
	BatchSize int32
	// Log receives reconnects and cursor restarts.
	Log *slog.Logger
	// Retry bounds the backoff between failed attempts to read the source.
	Retry time.Duration
	// CaughtUp, when set, is called with the newest entry read and the
	// time the poll began each time a poll of a source without a reliable
	// tailable cursor (FerretDB) ends: every entry visible when the poll
	// began has then been passed on. (A MongoDB cursor is tailed without
	// end, so it is never called there.)
	CaughtUp func(last optime.Timestamp, began time.Time)
	// Marked, when set, is called after each poll that took the oplog's
	// mark (source.OplogMark) just before it began, with that mark and the
	// newest entry passed on: while the oplog's mark still equals it, that
	// entry is the oplog's newest and nothing after it was logged. A
	// snapshot takes its start from it without reading the oplog (the
	// agent publishes it in its heartbeat).
	Marked func(mark source.OplogMark, last optime.Timestamp)
	// StallTimeout bounds every request to the source (opening the cursor,
	// each batch, the commit point): one that gets no answer within it
	// fails, the connection is dropped, and Run retries on a new one. A
	// blackholed or half-open connection would otherwise block capture
	// forever without a word. Zero means DefaultStallTimeout. While the
	// source still answers a ping after a stall (slow, not gone), the bound
	// doubles on each further stall, up to maxStallGrowth times it, and
	// returns to StallTimeout after a read that took less than half of
	// it: see allowSlow.
	StallTimeout time.Duration

	// slow is the stall bound grown by allowSlow; zero: StallTimeout.
	slow time.Duration
	// marked is the mark taken before the last complete poll (see poll).
	marked    source.OplogMark
	hasMarked bool
	// busy: the last poll passed entries on (see poll).
	busy bool
}

// maxStallGrowth caps how far allowSlow grows the stall bound: far, since
// a ping proved the source alive, and an abandoned request may go on
// loading the server, so the next needs longer still.
const maxStallGrowth = 64

// DefaultStallTimeout is how long capture waits for any one answer from the
// source before it calls the connection stalled, logs it and reconnects. It
// is well above the 1 s a MongoDB tailable cursor waits for new entries,
// and matches how long a measurement may take before the source counts as
// unreachable (see WatchSource).
const DefaultStallTimeout = 10 * time.Second

// Run sends entries to out until ctx ends, re-opening the cursor whenever it
// dies (network errors, failovers, the server's own limits). It returns a
// *GapError when the resume point has fallen off the oplog.
func (t *Tailer) Run(ctx context.Context, out chan<- bson.Raw) error {
	log := t.Log
	if log == nil {
		log = slog.Default()
	}
	last, inclusive := t.After, t.Inclusive
	if t.FromStart {
		last, inclusive = optime.Zero, true
	} else if last.IsZero() {
		newest, err := bounded(ctx, t.stallTimeout(), t.Source.NewestEntry)
		if err != nil {
			return fmt.Errorf("find where to start: %w", err)
		}
		last, inclusive = newest, true
	}
	backoff := 100 * time.Millisecond
	pause := minPollPause
	for ctx.Err() == nil {
		began := time.Now()
		n, err := t.poll(ctx, &last, &inclusive, out)
		var gap *GapError
		switch {
		case errors.As(err, &gap):
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			log.Warn("oplog read failed; retrying", "after", last.String(), "err", err, "backoff", backoff)
			t.allowSlow(ctx, err, log)
			sleep(ctx, backoff)
			backoff = min(backoff*2, t.maxRetry())
			continue
		}
		backoff = 100 * time.Millisecond
		if t.CaughtUp != nil && !t.Source.Caps.ReliableTailableCursor {
			t.CaughtUp(last, began)
		}
		if n == 0 || !t.Source.Caps.ReliableTailableCursor {
			// A cursor that died without news is re-opened after a pause,
			// not in a hot loop. FerretDB is polled (see open) and each poll
			// scans its whole oplog, so it always gets the pause, which
			// grows while polls find nothing: an idle source is not scanned
			// ten times a second.
			sleep(ctx, pause)
		}
		if !t.Source.Caps.ReliableTailableCursor && n == 0 {
			pause = min(2*pause, maxPollPause)
		} else {
			pause = minPollPause
		}
	}
	return ctx.Err()
}

// The pause between polls of a FerretDB oplog: minPollPause after a poll
// that found entries, doubling up to maxPollPause while polls find none
// (it bounds the extra delay of the first write after a quiet spell).
const (
	minPollPause = 100 * time.Millisecond
	maxPollPause = 400 * time.Millisecond
)

func (t *Tailer) stallTimeout() time.Duration {
	if t.slow > 0 {
		return t.slow
	}
	return t.baseStall()
}

func (t *Tailer) baseStall() time.Duration {
	if t.StallTimeout > 0 {
		return t.StallTimeout
	}
	return DefaultStallTimeout
}

// allowSlow grows the stall bound after a stall when the source answers a
// ping within the base bound (at least a second): the connection works, the server is only
// slow to answer the oplog request (an overloaded primary; FerretDB
// scanning a long oplog under load). A fixed bound would retry the same
// too-slow request for ever, so capture would never catch up. A dead or
// blackholed connection does not answer the ping and keeps the base
// bound, so such stalls are still noticed within it.
func (t *Tailer) allowSlow(ctx context.Context, err error, log *slog.Logger) {
	var stall *stallError
	if !errors.As(err, &stall) {
		return
	}
	base := t.baseStall()
	pctx, cancel := context.WithTimeout(ctx, max(base, time.Second))
	defer cancel()
	if t.Source.Client.Ping(pctx, nil) != nil {
		return
	}
	if grown := min(2*t.stallTimeout(), maxStallGrowth*base); grown > t.stallTimeout() {
		t.slow = grown
		log.Info("the source answers pings but not the oplog request in time: allowing it longer", "bound", grown)
	}
}

// bounded runs one request to the source with at most d to answer, and
// says so when it got none (the caller's own ctx ending is not a stall).
func bounded[T any](ctx context.Context, d time.Duration, f func(context.Context) (T, error)) (T, error) {
	rctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	v, err := f(rctx)
	return v, stalled(ctx, rctx, d, err)
}

// stalled explains an error caused by the request's own deadline.
func stalled(ctx, rctx context.Context, d time.Duration, err error) error {
	// The driver's socket deadline can fire a moment before rctx's timer,
	// so the deadline itself is compared, not rctx.Err.
	if deadline, _ := rctx.Deadline(); err != nil && ctx.Err() == nil && !time.Now().Before(deadline) {
		return &stallError{d: d, err: err}
	}
	return err
}

// stallError is a request to the source that got no answer within d.
type stallError struct {
	d   time.Duration
	err error
}

func (e *stallError) Error() string {
	return fmt.Sprintf("the source sent no answer within %s (stalled connection; reconnecting): %v", e.d, e.err)
}

func (e *stallError) Unwrap() error { return e.err }

func (t *Tailer) maxRetry() time.Duration {
	if t.Retry > 0 {
		return t.Retry
	}
	return 10 * time.Second
}

// readOnce opens one tailable cursor at last and follows it until it dies.
// It returns how many new entries it passed on. The first entry it sees must
// be last itself (unless starting inclusively): that proves nothing between
// last and the next entry fell off the oplog.
// poll reads the oplog once. On a polled source that cannot seek its oplog
// by ts (FerretDB), where every poll reads and decodes the whole oplog, it
// first takes the oplog's mark (two one-row reads), unless the last poll
// found entries: a mark equal to the one taken before the last complete
// marked read means nothing was logged or dropped since, so that read's
// result stands and this one is skipped. An idle
// agent then costs such a server two small reads per poll, not a full
// read, and the poll still counts as caught up (CaughtUp): every entry
// there is was passed on.
func (t *Tailer) poll(ctx context.Context, last *optime.Timestamp, inclusive *bool, out chan<- bson.Raw) (int, error) {
	if t.Source.Caps.ReliableTailableCursor || t.Source.Caps.SeekByTS || t.busy {
		// Busy: the last poll found entries, so this one will most likely
		// find more; its mark would only add to its cost.
		n, err := t.readOnce(ctx, last, inclusive, out)
		t.busy = n > 0
		return n, err
	}
	mark, err := bounded(ctx, t.stallTimeout(), t.Source.MarkOplog)
	if err != nil {
		return 0, err
	}
	if t.hasMarked && mark == t.marked {
		t.noteMarked(mark, *last)
		return 0, nil
	}
	n, err := t.readOnce(ctx, last, inclusive, out)
	if err == nil {
		t.marked, t.hasMarked = mark, true
		t.noteMarked(mark, *last)
	}
	t.busy = n > 0
	return n, err
}

func (t *Tailer) noteMarked(mark source.OplogMark, last optime.Timestamp) {
	if t.Marked != nil && !last.IsZero() {
		t.Marked(mark, last)
	}
}

func (t *Tailer) readOnce(ctx context.Context, last *optime.Timestamp, inclusive *bool, out chan<- bson.Raw) (int, error) {
	filter := bson.D{{Key: "ts", Value: bson.D{{Key: "$gte", Value: bson.Timestamp{T: last.T, I: last.I}}}}}
	opened := time.Now()
	cur, err := bounded(ctx, t.stallTimeout(), func(ctx context.Context) (*mongo.Cursor, error) { return t.open(ctx, filter) })
	if err != nil {
		return 0, err
	}
	if time.Since(opened) < t.baseStall()/2 {
		t.slow = 0 // the source answers quickly again (see allowSlow)
	}
	defer func() {
		// Bounded: closing a cursor on a server that went away must not hang.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = cur.Close(cctx)
	}()
	committed := optime.Zero
	first, n := true, 0
	for {
		more, err := t.advance(ctx, cur)
		if err != nil {
			return n, fmt.Errorf("read oplog: %w", err)
		}
		if !more {
			break
		}
		entry := cur.Current
		ts, err := optime.OfEntry(entry)
		if err != nil {
			return n, err
		}
		if first {
			first = false
			if err := t.checkContinuity(ctx, *last, ts, *inclusive); err != nil {
				return n, err
			}
		}
		// Skip what was already passed on: the resume entry itself, and the
		// redeliveries some servers make when a cursor restarts.
		if ts.Before(*last) || (ts == *last && !*inclusive) {
			continue
		}
		if committed, err = t.waitCommitted(ctx, ts, committed); err != nil {
			return n, err
		}
		select {
		case out <- cloneRaw(entry):
		case <-ctx.Done():
			return n, ctx.Err()
		}
		*last, *inclusive = ts, false
		n++
	}
	if first && !*inclusive {
		// Nothing at all, not even the resume entry. (Starting inclusively
		// there is nothing yet to be continuous with.)
		return n, t.checkEmpty(ctx, *last)
	}
	return n, nil
}

// advance moves cur to its next entry, asking the source for one batch at
// a time, each bounded by the stall timeout: cur.Next would wait on a dead
// connection forever. It reports false when the cursor is over (a cursor
// end the server decides, such as CappedPositionLost, is no error); a
// tailable cursor that is still open and merely empty is asked again.
func (t *Tailer) advance(ctx context.Context, cur *mongo.Cursor) (bool, error) {
	for {
		more, err := bounded(ctx, t.stallTimeout(), func(rctx context.Context) (bool, error) {
			if cur.TryNext(rctx) {
				return true, nil
			}
			return false, cur.Err()
		})
		switch {
		case more:
			return true, nil
		case err != nil && !isCursorEnd(err):
			return false, err
		case err != nil || cur.ID() == 0 || ctx.Err() != nil:
			return false, nil
		}
	}
}

// open starts a cursor over the entries at or after the resume point.
//
// On MongoDB it is a tailable await cursor. The first batch holds just the
// resume entry, which is all continuity needs and keeps a server from closing
// the cursor for a short first batch. FerretDB's tailable getMore re-runs the
// query and can skip entries (seen in tests: hundreds lost while writes ran),
// so a FerretDB source is polled with plain cursors, which it iterates
// reliably; Run re-opens them after a short pause.
func (t *Tailer) open(ctx context.Context, filter bson.D) (*mongo.Cursor, error) {
	opts := options.Find().SetBatchSize(t.batchSize())
	if t.Source.Caps.ReliableTailableCursor {
		opts.SetCursorType(options.TailableAwait).SetMaxAwaitTime(time.Second).SetBatchSize(1)
	}
	cur, err := t.Source.Oplog().Find(ctx, filter, opts)
	if err != nil {
		return nil, fmt.Errorf("open oplog cursor: %w", err)
	}
	cur.SetBatchSize(t.batchSize())
	return cur, nil
}

// checkContinuity proves the cursor started where capture left off.
func (t *Tailer) checkContinuity(ctx context.Context, last, firstSeen optime.Timestamp, inclusive bool) error {
	if firstSeen == last {
		return nil
	}
	if inclusive && firstSeen.After(last) {
		return nil
	}
	return &GapError{LastBefore: last, FirstAfter: firstSeen}
}

// checkEmpty handles a cursor that returned nothing at all: the resume entry
// itself is gone, so either the oplog rolled past it or it was never there.
func (t *Tailer) checkEmpty(ctx context.Context, last optime.Timestamp) error {
	oldest, err := bounded(ctx, t.stallTimeout(), t.Source.OldestEntry)
	if err != nil {
		return err
	}
	if oldest.After(last) {
		return &GapError{LastBefore: last, FirstAfter: oldest}
	}
	return nil
}

// waitCommitted blocks until ts is majority committed. committed is the
// commit point already known, so the server is asked only when needed.
func (t *Tailer) waitCommitted(ctx context.Context, ts, committed optime.Timestamp) (optime.Timestamp, error) {
	for committed.Before(ts) {
		c, err := bounded(ctx, t.stallTimeout(), t.Source.MajorityCommitted)
		if err != nil {
			return committed, err
		}
		if !c.Before(ts) {
			return c, nil
		}
		committed = c
		if !sleep(ctx, 20*time.Millisecond) {
			return committed, ctx.Err()
		}
	}
	return committed, nil
}

func (t *Tailer) batchSize() int32 {
	if t.BatchSize > 0 {
		return t.BatchSize
	}
	return 1000
}

// isCursorEnd tells errors that only mean "this cursor is over" from real ones.
func isCursorEnd(err error) bool {
	var ce mongo.CommandError
	if errors.As(err, &ce) {
		// CursorNotFound, CappedPositionLost, CursorKilled: re-open and carry on.
		return ce.Code == 43 || ce.Code == 136 || ce.Code == 237
	}
	return false
}

// cloneRaw copies a cursor's current document, whose bytes the driver reuses.
func cloneRaw(r bson.Raw) bson.Raw {
	c := make(bson.Raw, len(r))
	copy(c, r)
	return c
}

// sleep waits d or until ctx ends; it reports whether the full wait happened.
func sleep(ctx context.Context, d time.Duration) bool {
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true
	case <-ctx.Done():
		return false
	}
}
