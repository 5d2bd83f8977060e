package restore

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// txnWatch follows the prepared transactions of a range (ts <= the
// restore point T) in ts order, and keeps those with no decision yet.
//
// MongoDB makes a prepared transaction's writes visible at its
// commitTimestamp, which the coordinator picks just after the latest
// participant's prepare; each shard then logs its commitTransaction at a
// later ts of its own. So with commitTimestamp <= T < a commit entry's ts,
// the state at T holds the transaction although its commit is logged
// after T: on every shard of a cluster (the shards' commit entries have
// different ts), and on a replica set as well (a shard backed up alone).
// Only the decision entries past T tell, so the restore reads ahead for
// them (lookAhead). It keeps one entry per open transaction: they are few
// at any moment.
type txnWatch struct {
	open map[string]*openTxn
	// match is the restore's selection (Mapper.Match): a transaction that
	// writes nothing selected need not be decided.
	match func(db, coll string) bool
}

// openTxn is a transaction prepared at or before T and not decided there.
type openTxn struct {
	key      string
	prepared optime.Timestamp // its first prepare entry, on any shard
	parts    []int            // the cursors (shards) that logged a prepare
	selected bool             // it may write a namespace the restore selects
}

// see follows one entry of cursor part, in the range's ts order: in that
// order every participant's prepare comes before any decision.
func (w *txnWatch) see(part int, e bson.Raw) {
	ev, key, _ := replay.TxnEventOf(e)
	switch ev {
	case replay.TxnPrepare:
		if w.open == nil {
			w.open = map[string]*openTxn{}
		}
		t := w.open[key]
		if t == nil {
			ts, _ := optime.OfEntry(e)
			t = &openTxn{key: key, prepared: ts}
			w.open[key] = t
		}
		if !slices.Contains(t.parts, part) {
			t.parts = append(t.parts, part)
		}
		t.selected = t.selected || w.selects(e)
	case replay.TxnCommit, replay.TxnAbort:
		delete(w.open, key) // decided at or before T, on one shard for all
	}
}

// selects reports whether a prepare entry may write a namespace the
// restore selects: one of its operations does, or it ends a chain of
// partialTxn chunks (a non-null prevOpTime) whose operations it does not
// show, or it holds a command (a collection created in the transaction).
func (w *txnWatch) selects(prepare bson.Raw) bool {
	if w.match == nil {
		return true
	}
	if t, i, ok := prepare.Lookup("prevOpTime", "ts").TimestampOK(); !ok || t != 0 || i != 0 {
		return true
	}
	ops, ok := prepare.Lookup("o", "applyOps").ArrayOK()
	vals, err := ops.Values()
	if !ok || err != nil {
		return true
	}
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			return true
		}
		op, _ := d.Lookup("op").StringValueOK()
		ns, _ := d.Lookup("ns").StringValueOK()
		db, coll, _ := strings.Cut(ns, ".")
		if op == "c" || w.match(db, coll) {
			return true
		}
	}
	return false
}

// lookAhead reads, for every transaction still open at T, the oplog its
// shards logged after T on the plan's timeline until one decision is
// found, and returns the commit entries whose commitTimestamp is at or
// before T, by commitTimestamp: replayed after the range, each applies the
// whole transaction (every shard's prepared part). An abort, or a commit
// after T, is not returned: the transaction stays out. A transaction
// whose decision the repository does not hold yet leaves the state at T
// unknown, and the restore is refused (undecidedError).
func (w *txnWatch) lookAhead(ctx context.Context, r *repo.Repository, cs []*partCursor) ([]bson.Raw, error) {
	if len(w.open) == 0 {
		return nil, nil
	}
	decisions := map[string]bson.Raw{}
	for i, c := range cs {
		want := map[string]bool{}
		for k, t := range w.open {
			if t.selected && decisions[k] == nil && slices.Contains(t.parts, i) {
				want[k] = true
			}
		}
		if len(want) == 0 {
			continue
		}
		if err := readDecisions(ctx, r, c.plan, want, decisions); err != nil {
			return nil, err
		}
	}
	var out []bson.Raw
	var stamps []optime.Timestamp
	for _, t := range w.sorted() {
		if !t.selected {
			continue // it writes nothing the restore selects
		}
		d := decisions[t.key]
		if d == nil {
			return nil, undecidedError(t, cs)
		}
		ev, _, b := replay.TxnEventOf(d)
		cts := optime.Timestamp{T: b.T, I: b.I}
		if ev != replay.TxnCommit || cts.IsZero() || cts.After(cs[0].plan.Target) {
			continue
		}
		i, _ := slices.BinarySearchFunc(stamps, cts, optime.Compare)
		stamps, out = slices.Insert(stamps, i, cts), slices.Insert(out, i, d)
	}
	return out, nil
}

// readDecisions reads shard p's segments past p.Target on p's timeline, in
// order, and records the first decision of each wanted transaction, until
// all are found or the segments end.
func readDecisions(ctx context.Context, r *repo.Repository, p *Plan, want map[string]bool, decisions map[string]bson.Raw) error {
	segs, err := r.ListSegments(ctx, p.Shard)
	if err != nil {
		return fmt.Errorf("look past the restore point for a prepared transaction's decision: %w", err)
	}
	for _, s := range segs {
		if s.Timeline != p.Window.Timeline || !s.Last.After(p.Target) {
			continue
		}
		entries, err := r.ReadSegment(ctx, s)
		if err != nil {
			return fmt.Errorf("read oplog segment %s for a prepared transaction's decision after the restore point: %w", s.Key, err)
		}
		for _, e := range entries {
			if ts, err := optime.OfEntry(e); err != nil || !ts.After(p.Target) {
				continue
			}
			ev, key, _ := replay.TxnEventOf(e)
			if (ev == replay.TxnCommit || ev == replay.TxnAbort) && want[key] {
				decisions[key] = e
				delete(want, key)
				if len(want) == 0 {
					return nil
				}
			}
		}
	}
	return nil
}

func (w *txnWatch) sorted() []*openTxn {
	out := make([]*openTxn, 0, len(w.open))
	for _, t := range w.open {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b *openTxn) int { return optime.Compare(a.prepared, b.prepared) })
	return out
}

// undecidedError refuses a restore point at which a prepared transaction
// is open and whose decision no shard's stored oplog holds yet: its
// writes are visible at T if it commits (its commitTimestamp can be at or
// before T), so the state at T is not known. It happens at the newest
// points: every shard's oplog is complete through T, yet the decision is
// logged after T (the coordinator decides once every shard has prepared).
func undecidedError(t *openTxn, cs []*partCursor) error {
	var shards []string
	for _, i := range t.parts {
		shards = append(shards, cs[i].plan.Shard)
	}
	target := cs[0].plan.Target
	before := t.prepared.Prev()
	return fmt.Errorf("%w: a transaction prepared at %s (on %v) has no commit or abort in the repository after the restore point %s; "+
		"if it commits, its writes are visible at its commitTimestamp, which can be at or before %s, so the state there is not known yet: "+
		"run the restore again once the capture has stored the decision, or restore to a point before the prepare (--to %s)",
		ErrOutsideWindows, describeTS(t.prepared), shards, describeTS(target), target, before)
}
