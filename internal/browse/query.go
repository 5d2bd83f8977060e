package browse

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// DefaultSpan is how far before its end a range starts when no start is
// given: an hour, so that a forgotten --from never reads a month of oplog.
const DefaultSpan = time.Hour

// Query selects operations of one shard's captured oplog. The CLI's flags
// and the API's parameters fill the same fields; Validate checks them.
type Query struct {
	// Shard is the shard id to read; "" when the repository holds the
	// oplog of one shard only.
	Shard string
	// From is the first point of the range, inclusive: an RFC 3339 time
	// means the start of that second. Zero: DefaultSpan before To.
	From restore.When
	// To is the last point, inclusive (an RFC 3339 time: the end of that
	// second). Zero or latest: the newest captured entry.
	To restore.When
	// NS are namespace patterns (db, db.*, db.coll, or shell-style
	// wildcards such as shop.ord*); empty: every namespace except local.*
	// and config.* (the server's own) and rewind's own staging databases
	// (restore.StagingPrefix: a filtered restore or an undo into the live
	// deployment writes them, and they would bury the application's
	// operations). A pattern names them when asked. A command matches a pattern by its
	// database: a drop or rename in the database can change any collection.
	NS []string
	// Ops are kinds (repo.OpInsert, OpUpdate, OpDelete, OpCommand); empty:
	// every kind.
	Ops []string
	// ID, when its Type is set, selects the operations on the document
	// with this _id (see SameID).
	ID bson.RawValue
}

// OpKinds are the kinds --op takes.
var OpKinds = []string{repo.OpInsert, repo.OpUpdate, repo.OpDelete, repo.OpCommand}

// Validate checks a query's values alone, before anything is read. Every
// error is a *restore.InvalidError naming the field (from, to, ns, op):
// the CLI makes it a usage error, the API a 400.
func (q *Query) Validate() error {
	for _, p := range q.NS {
		if err := checkPattern(p); err != nil {
			return err
		}
	}
	for _, op := range q.Ops {
		if !slices.Contains(OpKinds, op) {
			return &restore.InvalidError{Field: "op", Msg: fmt.Sprintf("%q: want one of %s", op, strings.Join(OpKinds, ", "))}
		}
	}
	return checkOrder(q.From, q.To)
}

// checkOrder refuses a start after the end when both are given points.
func checkOrder(from, to restore.When) error {
	if from.IsZero() || from.Latest || to.IsZero() || to.Latest {
		return nil
	}
	if start(from).After(end(to)) {
		return restore.Invalid("from", "%s is after %s %s: give the earlier point as %s", from, restore.Field("to"), to, restore.Field("from"))
	}
	return nil
}

// ParseWhen reads a --from or --to value as restore.ParseWhen does --to
// (latest, an RFC 3339 time, or SECONDS:INCREMENT); errors name field.
func ParseWhen(field, s string) (restore.When, error) {
	w, err := restore.ParseWhen(s)
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		return w, &restore.InvalidError{Field: field, Msg: inv.Msg}
	}
	return w, err
}

// start is the first ts a range starting at w holds: the start of the
// second for a wall-clock time.
func start(w restore.When) optime.Timestamp {
	if w.Clock {
		return optime.Timestamp{T: w.TS.T}
	}
	return w.TS
}

// end is the last ts a range ending at w holds (ParseWhen already makes a
// wall-clock time the end of its second).
func end(w restore.When) optime.Timestamp { return w.TS }

// ParseID reads an _id given as Extended JSON (canonical or relaxed): 42,
// "abc", {"$oid": "..."}, {"$numberLong": "7"}, {"a": 1}... Errors are
// *restore.InvalidError for the field "id".
func ParseID(s string) (bson.RawValue, error) {
	var doc bson.Raw
	err := bson.UnmarshalExtJSON([]byte(`{"_id":`+s+`}`), false, &doc)
	els, _ := doc.Elements()
	if err != nil || len(els) != 1 || strings.TrimSpace(s) == "" {
		return bson.RawValue{}, &restore.InvalidError{Field: "id", Msg: fmt.Sprintf(
			"%q is not one Extended JSON value: quote a string ('\"abc\"'), give an ObjectId as '{\"$oid\": \"656f...\"}', a number as 42", s)}
	}
	return els[0].Value(), nil
}

// SameID reports whether two _id values name the same document: equal
// bytes of the same type, or numbers (int32, int64, double) of equal value,
// as MongoDB's _id index compares them (42, 42.0 and NumberLong(42) are
// one _id).
func SameID(a, b bson.RawValue) bool {
	if a.Type == b.Type {
		return string(a.Value) == string(b.Value)
	}
	x, xok := number(a)
	y, yok := number(b)
	return xok && yok && x == y
}

func number(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return float64(v.Int32()), true
	case bson.TypeInt64:
		n := v.Int64()
		return float64(n), n > -(1<<53) && n < 1<<53 // beyond, float64 would merge neighbours
	case bson.TypeDouble:
		f := v.Double()
		return f, !math.IsNaN(f)
	}
	return 0, false
}

// checkPattern checks one --ns pattern.
func checkPattern(p string) error {
	if p == "" || strings.HasPrefix(p, ".") {
		return &restore.InvalidError{Field: "ns", Msg: fmt.Sprintf("%q: want db, db.*, db.coll or a pattern such as shop.ord*", p)}
	}
	if _, err := path.Match(p, ""); err != nil {
		return &restore.InvalidError{Field: "ns", Msg: fmt.Sprintf("%q: %v (wildcards: * ? [abc])", p, err)}
	}
	return nil
}

// matcher decides which namespaces a query's patterns select.
type matcher struct{ patterns []string }

// match reports whether an operation of kind on ns is selected, and which
// patterns name its namespace (their index in patterns): a command
// selected only by its database names no pattern, so that a pattern
// naming a missing collection is still found out.
func (m matcher) match(ns, kind string) (bool, []int) {
	if len(m.patterns) == 0 {
		return !strings.HasPrefix(ns, "local.") && !strings.HasPrefix(ns, "config.") && !strings.HasPrefix(ns, restore.StagingPrefix), nil
	}
	var hits []int
	selected := false
	for i, p := range m.patterns {
		names, byDB := matchPattern(p, ns)
		if names {
			hits = append(hits, i)
		}
		selected = selected || names || byDB && kind == repo.OpCommand
	}
	return selected, hits
}

// matchPattern reports whether pattern p names ns (a pattern without a
// dot names every collection of its databases), and whether it names
// ns's database.
func matchPattern(p, ns string) (names, byDB bool) {
	pdb, _, whole := strings.Cut(p, ".")
	db, _, _ := strings.Cut(ns, ".")
	byDB, _ = path.Match(pdb, db)
	if !whole {
		return byDB, byDB
	}
	names, _ = path.Match(p, ns)
	return names, byDB
}
