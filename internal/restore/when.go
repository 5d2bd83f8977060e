package restore

import (
	"fmt"
	"math"
	"regexp"
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

// IsZero reports whether no restore point was given.
func (w When) IsZero() bool { return !w.Latest && w.TS.IsZero() }

// toHint is what --to accepts, for error messages.
const toHint = "want latest, an RFC 3339 time (2026-11-25T09:30:00Z) or an oplog timestamp SECONDS:INCREMENT"

// zoneless is the layout of a time without a zone: parsed only to say what
// is missing.
const zoneless = "2006-01-02T15:04:05.999999999"

// ParseWhen reads "latest", an RFC 3339 time (the state after every entry of
// that second; "t" and "z" may be lower case and a space may stand for the
// "t", as RFC 3339 allows) or an
// oplog timestamp SECONDS:INCREMENT (inclusive). Errors are *InvalidError
// for the field "to".
func ParseWhen(s string) (When, error) {
	s = strings.TrimSpace(s)
	if s == "latest" {
		return When{Latest: true, Text: s}, nil
	}
	// RFC 3339 §5.6: "T" and "Z" may be lower case (Go's layout wants them
	// upper case, and nothing else in the form has letters), and a space
	// may stand for the "T".
	norm := strings.ToUpper(s)
	if len(norm) > 10 && norm[10] == ' ' {
		norm = norm[:10] + "T" + norm[11:]
	}
	if t, err := time.Parse(time.RFC3339Nano, norm); err == nil {
		sec := t.Unix()
		if sec <= 0 || sec > math.MaxUint32 {
			return When{}, invalid("to", "%q: out of range of oplog timestamps (1970 to 2106)", s)
		}
		return When{TS: optime.Timestamp{T: uint32(sec), I: math.MaxUint32}, Clock: true, Text: s}, nil
	}
	if _, err := time.Parse(zoneless, norm); err == nil {
		return When{}, invalid("to", "%q has no time zone: add Z or an offset (%sZ or %s+01:00)", s, norm, norm)
	}
	if clockLike.MatchString(s) {
		return When{}, invalid("to", "%q looks like a clock time: %s", s, fullHint)
	}
	if ts, err := optime.Parse(s); err == nil {
		if ts.T < minOplogSeconds {
			return When{}, invalid("to", "%q: second %d is %s, before any real deployment's oplog: %s",
				s, ts.T, ts.Time().UTC().Format(time.RFC3339), fullHint)
		}
		return When{TS: ts, Text: s}, nil
	}
	return When{}, invalid("to", "%q: %s", s, toHint)
}

// minOplogSeconds is 2000-01-01T00:00:00Z. An oplog timestamp's seconds are
// Unix seconds of a real deployment's clock: a smaller value is a mistake,
// most often a clock time (--to 09:30 would be 9 s after 1970, increment 30).
const minOplogSeconds = 946684800

// clockLike is a time of day, 09:30 or 9:30:15 (also 0:0).
var clockLike = regexp.MustCompile(`^\d{1,2}:\d{1,2}(:\d{1,2})?$`)

// fullHint says what to give instead of a clock time.
const fullHint = "give a full RFC 3339 time such as 2026-11-29T09:30:00Z, or an oplog timestamp SECONDS:INCREMENT as `rewind list` shows them"

// InvalidError is a restore request field with a bad or missing value, or
// a --ns or --rename name the restore point cannot satisfy (Prepare's, which
// wraps it). Error() names it as the command line does (--connect-timeout);
// API() names it as the API's JSON does (connect_timeout), and so does each
// other field the message points to.
type InvalidError struct {
	Field string // the JSON name: to, target, ns, rename, parallel, connect_timeout
	Msg   string // what is wrong and what to do, starting with the value when there is one; in the CLI's words
	api   string // Msg in the API's words, when it names another field
}

func (e *InvalidError) Error() string { return flagName(e.Field) + " " + e.Msg }

// API is the message in the API's words: the JSON field name, then Msg.
func (e *InvalidError) API() string {
	if e.api != "" {
		return e.Field + " " + e.api
	}
	return e.Field + " " + e.Msg
}

// Field is a request field named inside an InvalidError's message:
// rendered --flag-name on the command line, json_name in the API.
type Field string

func flagName(f string) string { return "--" + strings.ReplaceAll(f, "_", "-") }

// Invalid builds an *InvalidError for a request field (its JSON name);
// args of type Field are rendered in each caller's words. Other packages
// whose requests restore's callers serve (browse, export) use it too.
func Invalid(name, format string, args ...any) *InvalidError { return invalid(name, format, args...) }

// invalid builds an *InvalidError; args of type Field are rendered in each
// caller's words.
func invalid(name, format string, args ...any) *InvalidError {
	cli, api := make([]any, len(args)), make([]any, len(args))
	named := false
	for i, a := range args {
		cli[i], api[i] = a, a
		if f, ok := a.(Field); ok {
			cli[i], api[i], named = flagName(string(f)), string(f), true
		}
	}
	e := &InvalidError{Field: name, Msg: fmt.Sprintf(format, cli...)}
	if named {
		e.api = fmt.Sprintf(format, api...)
	}
	return e
}
