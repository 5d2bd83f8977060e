package browse

import (
	"bytes"
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// tracker follows one document through the oplog. Its Memory holds only
// documents with that _id, in whichever collection they are: renames (a
// $out, a copy through a temporary collection) move collections whole,
// and the document may be in the one renamed onto the tracked collection.
// Every command is applied, as the translator needs them (drops, renames,
// dropDatabase); an applyOps is applied with only the operations that can
// touch such a document.
type tracker struct {
	id    bson.RawValue
	cur   string // the collection that holds the document now ("db.coll")
	mem   *replay.Memory
	apply *replay.Applier
	known bool // cur is a collection of the snapshot or written by the oplog
}

// load puts the document as the plan's snapshot holds it into the Memory.
func (t *tracker) load(ctx context.Context, r *repo.Repository, p restore.Plan) error {
	for _, c := range p.Collections {
		if c.Source.String() != t.cur {
			continue
		}
		t.known = true
		for _, ch := range c.Manifest.Chunks {
			docs, err := r.ReadChunk(ctx, ch)
			if err != nil {
				return err
			}
			for _, d := range docs {
				if SameID(d.Lookup("_id"), t.id) {
					return t.mem.Load(t.cur, []bson.Raw{d})
				}
			}
		}
	}
	return nil
}

// doc is the document in its current collection, nil when there is none.
func (t *tracker) doc() bson.Raw {
	for _, d := range t.mem.Documents(t.cur) {
		if SameID(d.Lookup("_id"), t.id) {
			return d
		}
	}
	return nil
}

func (t *tracker) version(ts optime.Timestamp, kind, in string) Version {
	return Version{TS: ts, Kind: kind, In: in, NS: t.cur, Doc: t.doc()}
}

// step applies entry e when it can touch the document and returns the
// version it made: when it writes the document in its collection, or
// changes it otherwise (a drop, a rename of the collection while it is
// there).
func (t *tracker) step(ctx context.Context, ts optime.Timestamp, e bson.Raw) (Version, bool, error) {
	entry, ok := t.relevant(e)
	if !ok {
		return Version{}, false, nil
	}
	before, beforeNS := t.doc(), t.cur
	kind, in, next := "", "", t.cur
	_ = repo.Operations(entry, func(o repo.Operation) error {
		if o.Kind == repo.OpCommand {
			if from, _ := o.Doc.Lookup("o", "renameCollection").StringValueOK(); from == next {
				next, _ = o.Doc.Lookup("o", "to").StringValueOK()
			}
			return nil
		}
		if o.NS == next && SameID(newOp(ts, entry, o).ID, t.id) {
			kind, in = o.Kind, o.In
		}
		return nil
	})
	if _, err := t.apply.Apply(ctx, []bson.Raw{entry}); err != nil {
		return Version{}, false, err
	}
	if next != "" {
		t.cur = next
	}
	after := t.doc()
	// A drop, or a rename of its collection, while the document exists.
	if kind == "" && (before != nil || after != nil) && (t.cur != beforeNS || !bytes.Equal(before, after)) {
		kind = repo.OpCommand
	}
	if kind == "" {
		return Version{}, false, nil
	}
	return Version{TS: ts, Kind: kind, In: in, NS: t.cur, Doc: after}, true, nil
}

// relevant returns what of entry e to apply: e itself, or a copy whose
// applyOps keeps only the operations that can touch the document (and
// commands), and false when nothing in it can.
func (t *tracker) relevant(e bson.Raw) (bson.Raw, bool) {
	op, _ := e.Lookup("op").StringValueOK()
	switch op {
	case "i", "u", "d":
		return e, t.mine(e)
	case "c":
		o, _ := e.Lookup("o").DocumentOK()
		ops, ok := o.Lookup("applyOps").ArrayOK()
		if !ok {
			t.see(commandNS(e))
			return e, true
		}
		kept, all := t.keep(ops, 0)
		_, inTxn := e.Lookup("lsid").DocumentOK() // a transaction's chunks and end are applied, kept or not
		switch {
		case all:
			return e, true
		case len(kept) == 0 && !inTxn:
			return nil, false
		}
		return withApplyOps(e, o, kept), true
	}
	return nil, false
}

// mine reports whether a CRUD operation writes a document with the
// tracked _id, and notes whether it writes the tracked collection.
func (t *tracker) mine(op bson.Raw) bool {
	ns, _ := op.Lookup("ns").StringValueOK()
	t.see(ns)
	kind, _ := op.Lookup("op").StringValueOK()
	key := op.Lookup("o", "_id")
	if kind == "u" {
		key = op.Lookup("o2", "_id")
	}
	return SameID(key, t.id)
}

func (t *tracker) see(ns string) {
	if ns == t.cur {
		t.known = true
	}
}

// commandNS is the namespace a command entry names (repo.Operations' rule).
func commandNS(e bson.Raw) string {
	var ns string
	_ = repo.Operations(e, func(op repo.Operation) error { ns = op.NS; return nil })
	return ns
}

// keep returns the operations of an applyOps array to apply and whether
// that is all of them; nested applyOps are filtered the same way.
func (t *tracker) keep(ops bson.RawArray, depth int) ([]bson.Raw, bool) {
	vals, _ := ops.Values()
	var kept []bson.Raw
	all := true
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			all = false
			continue
		}
		op, _ := d.Lookup("op").StringValueOK()
		inner, nested := d.Lookup("o", "applyOps").ArrayOK()
		switch {
		case op == "i" || op == "u" || op == "d":
			ok = t.mine(d)
		case op == "c" && nested && depth < 10:
			sub, subAll := t.keep(inner, depth+1)
			ok = len(sub) > 0
			if ok && !subAll {
				o, _ := d.Lookup("o").DocumentOK()
				d, all = withApplyOps(d, o, sub), false
			}
		default:
			ok = op == "c"
		}
		if ok {
			kept = append(kept, d)
		} else {
			all = false
		}
	}
	return kept, all
}

// withApplyOps is entry e with its o.applyOps replaced by ops, every other
// field kept as it was, byte for byte.
func withApplyOps(e, o bson.Raw, ops []bson.Raw) bson.Raw {
	arr := make(bson.A, len(ops))
	for i, op := range ops {
		arr[i] = op
	}
	var newO, out bson.D
	oEls, _ := o.Elements()
	for _, el := range oEls {
		if el.Key() == "applyOps" {
			newO = append(newO, bson.E{Key: "applyOps", Value: arr})
			continue
		}
		newO = append(newO, bson.E{Key: el.Key(), Value: el.Value()})
	}
	els, _ := e.Elements()
	for _, el := range els {
		if el.Key() == "o" {
			out = append(out, bson.E{Key: "o", Value: newO})
			continue
		}
		out = append(out, bson.E{Key: el.Key(), Value: el.Value()})
	}
	b, err := bson.Marshal(out)
	if err != nil {
		return e // unreachable for a document read from a segment; replay reports it whole
	}
	return b
}
