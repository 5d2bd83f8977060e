package snapshot

import (
	"context"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// deferredStart lets a snapshot decide its start after the copy, on a
// source that cannot seek its oplog by ts (FerretDB): there, finding the
// newest entry reads and decodes the whole oplog (seconds on a large one),
// and a snapshot that did so before the copy and again after it spent most
// of its time on those reads. Instead, before the copy it takes the oplog's
// mark (source.OplogMark: two one-row reads) and the server's clock, and
// reads the oplog once while the copy runs. After the copy and the settle
// margin it takes the mark again:
//   - unchanged: no entry was logged or dropped since before the copy
//     began, so the scan saw every entry there is and every write it stands
//     for changed data before the copy read anything. The newest entry is
//     start and end; nothing is replayed and the range needs no more reads.
//   - changed: writes ran during the copy. The start is the newest entry
//     stamped before the clock reading (its write, and every write stamped
//     before it, changed data before the copy began, since FerretDB stamps
//     an entry after its write), or the first mark's oldest entry (there
//     before the copy) when that is newer. The range capture then reads the
//     oplog once after the settle margin, as without this, and gives the end.
//
// Only a snapshot holding the writer lock of a whole replica set uses it:
// with an agent capturing, the agent's stored entries decide the range.
type deferredStart struct {
	mark   source.OplogMark
	clock  optime.Timestamp
	scan   chan scanResult // nil for an empty oplog: nothing to read
	cancel context.CancelFunc
}

type scanResult struct {
	source.OplogScan
	err error
}

// deferrable reports whether the range's start is decided after the copy
// (see deferredStart): a source without SeekByTS, and without majority
// reads (whose start must be majority-committed before the copy).
func deferrable(src *source.Source, writer *repo.Lock, o Options) bool {
	return writer != nil && o.part == nil && !src.Caps.SeekByTS && !src.Caps.MajorityReads
}

// beginDeferred takes the mark and the clock and starts the one scan. An
// empty oplog needs no scan: its start is the clock, as it is without
// deferring (see newOplogRange).
func (g *oplogRange) beginDeferred(ctx context.Context) error {
	mark, err := g.src.MarkOplog(ctx)
	if err != nil {
		return fmt.Errorf("note the oplog before the copy: %w", err)
	}
	clock, err := g.src.ClockTimestamp(ctx)
	if err != nil {
		return fmt.Errorf("note the snapshot's start: %w", err)
	}
	d := &deferredStart{mark: mark, clock: clock, cancel: func() {}}
	g.deferred = d
	if mark.Count == 0 && mark.Oldest.IsZero() {
		g.start, g.fromEmpty = clock, true
		return nil
	}
	sctx, cancel := context.WithCancel(ctx)
	d.scan, d.cancel = make(chan scanResult, 1), cancel
	go func() {
		sc, err := g.src.ScanOplog(sctx, clock)
		d.scan <- scanResult{sc, err}
	}()
	return nil
}

// finishDeferred decides the start once the settle margin after the copy
// (after) has passed. quiet reports that the range is also decided and
// made durable; otherwise the caller captures it from g.start.
func (g *oplogRange) finishDeferred(ctx context.Context, after time.Time) (end optime.Timestamp, quiet bool, err error) {
	d := g.deferred
	var sc scanResult
	if d.scan != nil {
		select {
		case sc = <-d.scan:
		case <-ctx.Done():
			return optime.Zero, false, ctx.Err()
		}
		if sc.err != nil {
			return optime.Zero, false, fmt.Errorf("read the oplog during the copy: %w", sc.err)
		}
	}
	select {
	case <-ctx.Done():
		return optime.Zero, false, ctx.Err()
	case <-time.After(time.Until(after)):
	}
	mark, err := g.src.MarkOplog(ctx)
	if err != nil {
		return optime.Zero, false, fmt.Errorf("note the oplog after the copy: %w", err)
	}
	quiet = mark == d.mark && (g.fromEmpty || sc.Count == mark.Count)
	if !g.fromEmpty {
		g.start = sc.Newest
		if !quiet {
			g.start = d.mark.Oldest
			if sc.NewestBefore.After(g.start) {
				g.start = sc.NewestBefore
			}
		}
		if g.start.IsZero() { // no entry before the copy: as an empty oplog
			g.start, g.fromEmpty = d.clock, true
		}
	}
	if !quiet {
		g.o.Log.Info("the oplog changed during the copy; the range capture reads it once for the writes to replay", "start", g.start.String())
		return optime.Zero, false, nil
	}
	g.setEnd(g.start)
	g.o.Log.Info("no entry was logged during the copy: nothing to replay", "start", g.start.String())
	return g.start, true, g.storeQuiet(ctx, sc.OplogScan)
}

// storeQuiet makes a quiet range [start, start] durable: nothing to store
// for an empty oplog or a repository that holds the entry already; into a
// repository with no timeline, the start entry alone as a new timeline's
// first (looked up by _id, one row); else the range capture continues the
// stored timeline up to it (one more read of the oplog, for the entries
// logged since that timeline's end).
func (g *oplogRange) storeQuiet(ctx context.Context, sc source.OplogScan) error {
	// The range capture proves the source is the deployment the stored
	// timeline came from (oplog.ErrOtherHistory); a quiet range that needs
	// no capture must prove it too, or another deployment's snapshot would
	// open a window on this one's timeline. One segment read and one
	// lookup by _id here.
	if err := oplog.CheckContinues(ctx, g.repo, g.shard, g.src); err != nil {
		return err
	}
	if g.fromEmpty {
		return nil
	}
	h, err := g.repo.History(ctx, g.shard)
	if err != nil {
		return fmt.Errorf("read the repository's timelines: %w", err)
	}
	if covered(h, g.start, g.start, false) {
		return nil
	}
	if len(h.Timelines) > 0 || sc.NewestID.Type == 0 {
		_, err := g.captureRange(ctx)
		return err
	}
	raw, held, err := g.src.EntryByID(ctx, sc.NewestID)
	if err != nil {
		return err
	}
	if ts, _ := optime.OfEntry(raw); !held || ts != g.start {
		_, err := g.captureRange(ctx)
		return err
	}
	sink, _, err := oplog.NewRepoSink(ctx, g.repo, g.shard, g.src)
	if err != nil {
		return err
	}
	b := oplog.Batch{Timeline: repo.TimelineID(g.start)}
	b.Append(raw, g.start)
	if err := sink.WriteSegment(ctx, b); err != nil {
		return fmt.Errorf("store the snapshot's start entry: %w", err)
	}
	return nil
}

// fromAgentPoll takes the start from the running agent's newest complete
// poll, on a source that cannot seek its oplog by ts, when the oplog's mark
// still equals the one the agent took before that poll (its heartbeat
// publishes both, repo.PolledOplog): nothing was logged since, so the
// newest entry the poll read is the oplog's newest, found without reading
// the oplog. It reports false (the start is then read from the oplog) for
// any other source, without such a heartbeat, or after a change.
func (g *oplogRange) fromAgentPoll(ctx context.Context) bool {
	if g.writer != nil || g.o.part != nil || g.src.Caps.SeekByTS || g.src.Caps.MajorityReads {
		return false
	}
	hb, err := g.repo.ReadHeartbeat(ctx, g.shard)
	if err != nil || hb.Polled == nil {
		return false
	}
	mark, err := g.src.MarkOplog(ctx)
	if err != nil || mark.Count != hb.Polled.Count || mark.Oldest != hb.Polled.Oldest {
		return false
	}
	g.start, g.agentMark = hb.Polled.Newest, &mark
	g.o.Log.Info("the start is the newest entry of the agent's last poll: nothing was logged since", "start", g.start.String())
	return true
}

// newestAtEnd is the oplog's newest entry once the copy has ended: the
// start itself when it came from the agent's poll and the oplog's mark is
// still the same (nothing logged during the copy), else read from the
// oplog.
func (g *oplogRange) newestAtEnd(ctx context.Context) (optime.Timestamp, error) {
	if g.agentMark != nil {
		if mark, err := g.src.MarkOplog(ctx); err == nil && mark == *g.agentMark {
			g.o.Log.Info("no entry was logged during the copy: nothing to replay", "start", g.start.String())
			return g.start, nil
		}
	}
	return g.src.NewestEntry(ctx)
}
