// Package optime holds the oplog timestamp, the unit of every restore point.
package optime

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Timestamp is a MongoDB oplog timestamp: seconds since the epoch and an
// increment that orders entries within a second. It is unique and strictly
// increasing on one replica set.
type Timestamp struct {
	T uint32 `json:"t"`
	I uint32 `json:"i"`
}

// Zero is the timestamp before every entry.
var Zero = Timestamp{}

// Compare returns -1, 0 or +1 as a is before, equal to or after b.
func Compare(a, b Timestamp) int {
	switch {
	case a.T < b.T:
		return -1
	case a.T > b.T:
		return 1
	case a.I < b.I:
		return -1
	case a.I > b.I:
		return 1
	}
	return 0
}

// Before reports whether ts is strictly before o.
func (ts Timestamp) Before(o Timestamp) bool { return Compare(ts, o) < 0 }

// After reports whether ts is strictly after o.
func (ts Timestamp) After(o Timestamp) bool { return Compare(ts, o) > 0 }

// Prev is the timestamp right before ts, so that reading the oplog
// "after" it includes ts: the previous increment, or the last one of the
// previous second; the zero timestamp stays zero.
func (ts Timestamp) Prev() Timestamp {
	switch {
	case ts.I > 0:
		return Timestamp{T: ts.T, I: ts.I - 1}
	case ts.T > 0:
		return Timestamp{T: ts.T - 1, I: math.MaxUint32}
	}
	return ts
}

// IsZero reports whether ts is the zero timestamp.
func (ts Timestamp) IsZero() bool { return ts == Zero }

// Time is the wall-clock second the timestamp belongs to.
func (ts Timestamp) Time() time.Time { return time.Unix(int64(ts.T), 0).UTC() }

// String formats ts as "SECONDS:INCREMENT", the form users type.
func (ts Timestamp) String() string { return fmt.Sprintf("%d:%d", ts.T, ts.I) }

// Key formats ts with fixed width so that byte order of keys is time order.
func (ts Timestamp) Key() string { return fmt.Sprintf("%010d.%010d", ts.T, ts.I) }

// Parse reads "SECONDS:INCREMENT".
func Parse(s string) (Timestamp, error) {
	sec, inc, ok := strings.Cut(s, ":")
	if !ok {
		return Zero, fmt.Errorf("parse timestamp %q: want SECONDS:INCREMENT", s)
	}
	t, err := strconv.ParseUint(sec, 10, 32)
	if err != nil {
		return Zero, fmt.Errorf("parse timestamp %q: seconds: %w", s, err)
	}
	i, err := strconv.ParseUint(inc, 10, 32)
	if err != nil {
		return Zero, fmt.Errorf("parse timestamp %q: increment: %w", s, err)
	}
	return Timestamp{T: uint32(t), I: uint32(i)}, nil
}

// ParseKey reads the fixed-width form written by Key.
func ParseKey(s string) (Timestamp, error) {
	sec, inc, ok := strings.Cut(s, ".")
	if !ok || len(sec) != 10 || len(inc) != 10 {
		return Zero, fmt.Errorf("parse timestamp key %q: want 10 digits, a dot, 10 digits", s)
	}
	return Parse(sec + ":" + inc)
}
