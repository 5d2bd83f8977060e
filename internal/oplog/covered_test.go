package oplog

import (
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Covered-through follows the polls that read everything once their newest
// entry is stored, less SettleMargin, and never falls below last durable.
func TestCoveredThrough(t *testing.T) {
	st := &Stats{}
	at := func(sec int64) time.Time { return time.Unix(sec, 0) }
	ts := func(sec uint32, i uint32) optime.Timestamp { return optime.Timestamp{T: sec, I: i} }
	if got := st.CoveredThrough(); !got.IsZero() {
		t.Fatalf("nothing known: %s", got)
	}
	st.lastDurable.Store(pack(ts(100, 3)))
	if got := st.CoveredThrough(); got != ts(100, 3) {
		t.Fatalf("without polls: %s, want last durable", got)
	}
	// A poll read up to (105,1), not stored yet: it proves nothing yet.
	st.NoteCaughtUp(ts(105, 1), at(110))
	if got := st.CoveredThrough(); got != ts(100, 3) {
		t.Fatalf("poll not durable: %s, want 100:3", got)
	}
	st.lastDurable.Store(pack(ts(105, 1)))
	if got := st.CoveredThrough(); got != ts(109, 0) {
		t.Fatalf("poll durable: %s, want 109:0 (110 s less the settle margin)", got)
	}
	// An idle source: later polls with the same newest entry move it on.
	st.NoteCaughtUp(ts(105, 1), at(120))
	st.NoteCaughtUp(ts(105, 1), at(130))
	if got := st.CoveredThrough(); got != ts(129, 0) {
		t.Fatalf("idle: %s, want 129:0", got)
	}
	// A write in a poll still uploading holds it where the stored polls
	// prove, never back.
	st.NoteCaughtUp(ts(131, 1), at(140))
	if got := st.CoveredThrough(); got != ts(129, 0) {
		t.Fatalf("write uploading: %s, want 129:0", got)
	}
	st.lastDurable.Store(pack(ts(131, 1)))
	if got := st.CoveredThrough(); got != ts(139, 0) {
		t.Fatalf("write stored: %s, want 139:0", got)
	}
	// A clock behind the entries: last durable wins.
	st.NoteCaughtUp(ts(200, 1), at(150))
	st.lastDurable.Store(pack(ts(200, 1)))
	if got := st.CoveredThrough(); got != ts(200, 1) {
		t.Fatalf("clock behind: %s, want 200:1", got)
	}
}

// Polls remembered while uploads lag are bounded.
func TestCoveredThroughBounded(t *testing.T) {
	st := &Stats{}
	for i := range 3 * maxPending {
		st.NoteCaughtUp(optime.Timestamp{T: uint32(1000 + i), I: 1}, time.Unix(int64(2000+i), 0))
	}
	if n := len(st.coverage.pending); n != maxPending {
		t.Fatalf("%d polls remembered, want %d", n, maxPending)
	}
	st.lastDurable.Store(pack(optime.Timestamp{T: uint32(1000 + 3*maxPending), I: 1}))
	if got, want := st.CoveredThrough(), (optime.Timestamp{T: uint32(2000 + 3*maxPending - 2)}); got != want {
		t.Fatalf("covered %s, want %s", got, want)
	}
}
