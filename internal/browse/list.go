package browse

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Op is one operation of the captured oplog as the browser lists it.
type Op struct {
	TS   optime.Timestamp // the entry's ts (an operation inside applyOps takes the enclosing entry's)
	Kind string           // repo.OpInsert, OpUpdate, OpDelete, OpCommand, or an op letter rewind does not name
	NS   string           // repo.Operation.NS
	// ID is the _id of the document written (the inserted document's, o2's
	// for an update, the key's for a delete); its Type is 0 for a command.
	ID bson.RawValue
	// Change is what the entry says: the inserted document, the update
	// (a $v:2 diff, $set/$unset, or a whole replacement), the deleted
	// document's key, or the command.
	Change bson.Raw
	Raw    bson.Raw // the operation as logged: the entry, or the operation inside applyOps
	Entry  bson.Raw // the stored entry that holds it (Raw itself, or the whole applyOps)
	In     string   // "" or repo.InTransaction, InPreparedTransaction, InApplyOps
}

// newOp reads an operation's parts.
func newOp(ts optime.Timestamp, entry bson.Raw, o repo.Operation) Op {
	op := Op{TS: ts, Kind: o.Kind, NS: o.NS, Raw: o.Doc, Entry: entry, In: o.In}
	op.Change, _ = o.Doc.Lookup("o").DocumentOK()
	switch o.Kind {
	case repo.OpInsert, repo.OpDelete:
		op.ID = op.Change.Lookup("_id")
	case repo.OpUpdate:
		if o2, ok := o.Doc.Lookup("o2").DocumentOK(); ok {
			op.ID = o2.Lookup("_id") // sharded collections add shard key fields: only _id counts
		}
	}
	return op
}

// ListStats says what List covered and read.
type ListStats struct {
	Range
	Listed   int64 // operations passed to fn
	Segments int   // segments holding the range
	Skipped  int   // of those, not read: their index shows nothing the query selects
	// Warnings name indexes that could not be used (corrupt, or from a
	// newer rewind): their segments were read instead.
	Warnings []string
}

// List calls fn for every operation of q's range that q selects, in oplog
// order, reading only the segments of the range (and, when q filters by
// namespace or kind, not even those whose index shows nothing it
// selects). An error from fn stops it and is returned. A --ns pattern
// that selects nothing in the range is an error (a *restore.InvalidError,
// wrapped) once the range is read.
func List(ctx context.Context, r *repo.Repository, q Query, fn func(Op) error) (ListStats, error) {
	var st ListStats
	err := readLocked(ctx, r, "oplog", func(ctx context.Context) error {
		sc, err := resolve(ctx, r, q)
		st.Range, st.Segments = sc.Range, len(sc.segs)
		if err != nil {
			return err
		}
		f := newFilter(q)
		for _, p := range sc.segs {
			if skip, err := f.skip(ctx, r, p, sc.Range); err != nil {
				return err
			} else if skip {
				st.Skipped++
				continue
			}
			err := eachOperation(ctx, r, p, sc.Range, func(ts optime.Timestamp, e bson.Raw, o repo.Operation) error {
				if !f.namespace(o.NS, o.Kind) || !f.kind(o.Kind) {
					return nil
				}
				op := newOp(ts, e, o)
				if f.id.Type != 0 && !SameID(op.ID, f.id) {
					return nil
				}
				st.Listed++
				return fn(op)
			})
			if err != nil {
				return err
			}
		}
		st.Warnings = f.warnings
		return f.unmatched(sc.Range)
	})
	if err != nil {
		return st, fmt.Errorf("list operations: %w", err)
	}
	return st, nil
}

// skip reports whether p's segment holds nothing f selects in rng, from
// its index alone: only when f selects by namespace or kind (an _id is not
// in the index), and never when the index is missing or unreadable (the
// segment is read then). The patterns the index's namespaces match are
// recorded as seen.
func (f *filter) skip(ctx context.Context, r *repo.Repository, p planned, rng Range) (bool, error) {
	if len(f.m.patterns) == 0 && len(f.ops) == 0 {
		return false, nil
	}
	x, err := readIndex(ctx, r, p.seg, &f.warnings)
	if err != nil || x == nil {
		return false, err
	}
	for _, c := range x.Counts {
		if c.Second < rng.From.T || c.Second > rng.To.T {
			continue
		}
		if f.namespace(c.NS, c.Kind) && f.kind(c.Kind) {
			return false, nil
		}
	}
	return true, nil
}

// OpJSON is an operation's JSON form, one line of `rewind oplog --json`
// and of the API: the ts as {t, i} and its second as RFC 3339, the _id
// and the change as canonical Extended JSON.
type OpJSON struct {
	TS     optime.Timestamp `json:"ts"`
	Time   string           `json:"time"`
	Op     string           `json:"op"`
	NS     string           `json:"ns"`
	ID     json.RawMessage  `json:"_id"` // null for a command
	Change json.RawMessage  `json:"change"`
	In     string           `json:"in,omitempty"`
	Raw    json.RawMessage  `json:"raw,omitempty"` // the operation as logged, when asked for
}

// JSON returns the operation's JSON form, with the raw entry when raw.
func (o Op) JSON(raw bool) OpJSON {
	out := OpJSON{TS: o.TS, Time: o.TS.Time().Format(time.RFC3339), Op: o.Kind, NS: o.NS,
		ID: json.RawMessage(ValueJSON(o.ID)), Change: json.RawMessage(DocJSON(o.Change)), In: o.In}
	if raw {
		out.Raw = json.RawMessage(DocJSON(o.Raw))
	}
	return out
}

// DocJSON is a document as canonical Extended JSON ("null" for none).
func DocJSON(d bson.Raw) string {
	if d == nil {
		return "null"
	}
	b, err := bson.MarshalExtJSON(d, true, false)
	if err != nil {
		return fmt.Sprintf("%q", "unprintable document: "+err.Error())
	}
	return string(b)
}

// ValueJSON is one value as canonical Extended JSON ("null" for none).
func ValueJSON(v bson.RawValue) string {
	if v.Type == 0 {
		return "null"
	}
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return "null"
	}
	s := DocJSON(doc)
	return s[len(`{"v":`) : len(s)-1]
}
