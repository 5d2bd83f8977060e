package oplog

import (
	"context"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/source"
)

// WatchSource measures the oldest and newest entries of the source's oplog
// every interval until ctx ends, into stats. It is the one place that asks
// the source: the heartbeat, the metrics and the alerts read the numbers
// (Lag, OplogWindow), so none of them waits on the source. A failed
// measurement keeps the previous one.
func WatchSource(ctx context.Context, src *source.Source, stats *Stats, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		measure(ctx, src, stats)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// measureTimeout bounds one measurement: a source that does not answer
// within it counts as down (source_unreachable).
const measureTimeout = 10 * time.Second

// measure reads the oplog's edges and fill once. The source counts as
// down when its newest entry cannot be read, or when the measurement as a
// whole got no answer within measureTimeout (a stalled connection: the
// oldest entry or the fill can hang too), and down since the measurement
// began: a stall is then reported measureTimeout after it began, not
// twice that. (A refused fill, such as collStats without permission, is
// an answer.)
func measure(ctx context.Context, src *source.Source, stats *Stats) {
	began := time.Now()
	mctx, cancel := context.WithTimeout(ctx, measureTimeout)
	defer cancel()
	if !src.Caps.SeekByTS {
		if !measureByMark(mctx, src, stats) {
			stats.sourceAnswered(ctx.Err() != nil, began)
			return
		}
	} else {
		newest, err := src.NewestEntry(mctx)
		if err != nil {
			stats.sourceAnswered(ctx.Err() != nil, began) // ctx ended: the agent stops, not the source
			return
		}
		stats.sourceNewest.Store(pack(newest))
		if oldest, err := src.OldestEntry(mctx); err == nil {
			stats.sourceOldest.Store(pack(oldest))
		}
	}
	if size, max, err := src.OplogFill(mctx); err == nil {
		stats.oplogFilling.Store(filling(size, max))
	}
	stalled := mctx.Err() == context.DeadlineExceeded && ctx.Err() == nil
	stats.sourceAnswered(!stalled, began)
}

// sourceAnswered records whether the source answered a measurement begun
// at began; a failed one marks it down since then unless it already was.
func (s *Stats) sourceAnswered(ok bool, began time.Time) {
	if ok {
		s.sourceDownSince.Store(0)
	} else {
		s.sourceDownSince.CompareAndSwap(0, began.UnixNano())
	}
}

// SourceDownFor is how long the source has not answered (its oplog's
// newest entry could not be read), 0 while it answers.
func (s *Stats) SourceDownFor(now time.Time) time.Duration {
	since := s.sourceDownSince.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

// filling reports whether an oplog of size bytes out of max has room left:
// below 90 % of its maximum it has not dropped anything yet. An unknown
// maximum counts as full, so the window is judged as measured.
func filling(size, max int64) bool { return max > 0 && size < max/10*9 }

// OplogFilling reports whether the source's oplog has not reached its
// maximum size yet at the last measurement: its window is then only its
// age, and grows.
func (s *Stats) OplogFilling() bool { return s.oplogFilling.Load() }

// SourceNewest is the newest entry of the source's oplog at the last
// measurement (zero before the first).
func (s *Stats) SourceNewest() optime.Timestamp { return unpack(s.sourceNewest.Load()) }

// Lag is how far the repository is behind the source: the source's newest
// entry minus the newest stored one, in whole seconds (oplog time). It is
// zero until both are known, and when the repository is up to date.
func (s *Stats) Lag() time.Duration {
	newest, durable := s.SourceNewest(), s.LastDurable()
	if durable.IsZero() || !newest.After(durable) {
		return 0
	}
	return time.Duration(newest.T-durable.T) * time.Second
}

// OplogWindow is the time between the oldest and newest entries of the
// source's oplog: how long capture may be down without a gap (once the
// oplog is full). ok is false until it was measured.
func (s *Stats) OplogWindow() (d time.Duration, ok bool) {
	oldest, newest := unpack(s.sourceOldest.Load()), s.SourceNewest()
	if oldest.IsZero() || newest.IsZero() {
		return 0, false
	}
	return time.Duration(int64(newest.T)-int64(oldest.T)) * time.Second, true
}

// measureByMark measures a source that cannot seek its oplog by ts
// (FerretDB), where finding the newest entry reads the whole oplog: the
// oplog's mark gives the oldest entry, and the newest is read only when
// the mark differs from the one behind the last measurement (nothing
// logged since: the newest is still the one measured). It reports whether
// the source answered.
func measureByMark(ctx context.Context, src *source.Source, stats *Stats) bool {
	mark, err := src.MarkOplog(ctx)
	if err != nil {
		return false
	}
	stats.sourceOldest.Store(pack(mark.Oldest))
	stats.mu.Lock()
	same := stats.measuredMark == mark && stats.hasMeasured
	stats.mu.Unlock()
	if same {
		return true
	}
	newest, err := src.NewestEntry(ctx)
	if err != nil {
		return false
	}
	stats.sourceNewest.Store(pack(newest))
	stats.mu.Lock()
	stats.measuredMark, stats.hasMeasured = mark, true
	stats.mu.Unlock()
	return true
}
