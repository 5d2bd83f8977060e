package oplog

import (
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// SettleMargin is how long a source without AtomicOplog (FerretDB) is
// given to log a write after making it: FerretDB appends the entry right
// after the data change, in the same request, and a second bounds that
// step even on a starved machine. A snapshot waits it out before reading
// its end; covered-through stays this far behind the last complete poll.
const SettleMargin = time.Second

// coverage follows how far a source's oplog is known complete when that
// is more than its newest entry: a poll that read every entry visible when
// it began (CaughtUp) proves there is none before the poll's start (less
// SettleMargin) after the newest entry it read, once that entry is stored.
type coverage struct {
	// pending are polls whose newest entry is not stored yet, oldest
	// first; covered is the best proven so far.
	pending []caughtUp
	covered optime.Timestamp
}

type caughtUp struct{ last, through optime.Timestamp }

// maxPending bounds the polls remembered while uploads lag: dropping the
// oldest only delays covered-through, the newer polls prove more.
const maxPending = 1024

// NoteCaughtUp records a poll of a source without AtomicOplog that began
// at began and passed on every entry up to last: once last is durable,
// the oplog is complete through began less SettleMargin. Use it as
// Capture.CaughtUp. began is the agent's clock, compared with the
// source's oplog times: right for the test server (FerretDB), which runs
// on the agent's machine; a source of this kind elsewhere would need its
// own clock (source.ClockTimestamp) and a margin for the skew.
func (s *Stats) NoteCaughtUp(last optime.Timestamp, began time.Time) {
	through := optime.Timestamp{T: uint32(began.Add(-SettleMargin).Unix())}
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.coverage
	if n := len(c.pending); n > 0 && c.pending[n-1].last == last {
		c.pending[n-1].through = through // an idle source: the same entry, a later poll
		return
	}
	if len(c.pending) == maxPending {
		c.pending = c.pending[1:]
	}
	c.pending = append(c.pending, caughtUp{last: last, through: through})
}

// CoveredThrough is how far the source's oplog is known complete in the
// repository: every entry at or before it is stored. It is at least
// LastDurable; on a source without AtomicOplog the polls noted by
// NoteCaughtUp move it on while the source is idle. (On MongoDB, an idle
// replica set writes a no-op entry every 10 seconds, which moves
// LastDurable itself.) Timestamps with I 0 come from a clock: they sort
// before every entry of their second.
func (s *Stats) CoveredThrough() optime.Timestamp {
	durable := s.LastDurable()
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &s.coverage
	for len(c.pending) > 0 && !c.pending[0].last.After(durable) {
		if c.pending[0].through.After(c.covered) {
			c.covered = c.pending[0].through
		}
		c.pending = c.pending[1:]
	}
	if durable.After(c.covered) {
		return durable
	}
	return c.covered
}
