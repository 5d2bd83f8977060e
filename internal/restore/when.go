package restore

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// When is a parsed restore point (--to).
type When struct {
	Latest bool             // the newest restore point
	TS     optime.Timestamp // inclusive upper bound of the entries to replay
	Clock  bool             // TS came from a wall-clock time: TS.I is the maximum
	Text   string           // as the user wrote it
}

func (w When) String() string {
	switch {
	case w.Latest:
		return "latest"
	case w.Clock:
		return w.TS.Time().Format(time.RFC3339)
	}
	return w.TS.String()
}

// ParseWhen reads "latest", an RFC 3339 time (the state after every entry of
// that second) or an oplog timestamp SECONDS:INCREMENT (inclusive).
func ParseWhen(s string) (When, error) {
	s = strings.TrimSpace(s)
	if s == "latest" {
		return When{Latest: true, Text: s}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		sec := t.Unix()
		if sec < 0 || sec > math.MaxUint32 {
			return When{}, fmt.Errorf("parse --to %q: out of range of oplog timestamps", s)
		}
		return When{TS: optime.Timestamp{T: uint32(sec), I: math.MaxUint32}, Clock: true, Text: s}, nil
	}
	if ts, err := optime.Parse(s); err == nil {
		return When{TS: ts, Text: s}, nil
	}
	return When{}, fmt.Errorf("parse --to %q: want latest, an RFC 3339 time (2026-11-25T09:30:00Z) or an oplog timestamp SECONDS:INCREMENT", s)
}
