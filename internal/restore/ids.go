package restore

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// idSet is a set of documents' _ids, each known by its BSON type and bytes
// (as replay keys documents: a document's _id is stored once and every
// oplog entry about it carries the same bytes), in the order first added.
type idSet struct {
	keys map[string]bool
	ids  []bson.RawValue
}

func newIDSet() *idSet { return &idSet{keys: map[string]bool{}} }

func idKey(id bson.RawValue) string { return string([]byte{byte(id.Type)}) + string(id.Value) }

// add adds id (copied) and reports whether it was new.
func (s *idSet) add(id bson.RawValue) bool {
	k := idKey(id)
	if s.keys[k] {
		return false
	}
	s.keys[k] = true
	s.ids = append(s.ids, bson.RawValue{Type: id.Type, Value: append([]byte(nil), id.Value...)})
	return true
}

func (s *idSet) has(id bson.RawValue) bool { return s.keys[idKey(id)] }

// keeps reports whether a restricted plan keeps the snapshot document doc
// of source namespace src (see Plan.only).
func (p *Plan) keeps(src Namespace, doc bson.Raw) bool {
	set, ok := p.only[src]
	if !ok {
		return true
	}
	return set.has(doc.Lookup("_id"))
}

// restrict drops from entries the writes of restricted namespaces to
// documents outside their sets, inside transactions too, so a staging of
// a few documents replays only their history. Commands are kept.
func (p *Plan) restrict(entries []bson.Raw) []bson.Raw {
	if len(p.only) == 0 {
		return entries
	}
	out := entries[:0:0]
	for _, e := range entries {
		if kept, ok := p.restrictEntry(e); ok {
			out = append(out, kept)
		}
	}
	return out
}

// restrictEntry keeps or drops one entry; an applyOps command keeps its
// entry (a transaction's bookkeeping hangs on it) with the operations kept.
func (p *Plan) restrictEntry(e bson.Raw) (bson.Raw, bool) {
	op, _ := e.Lookup("op").StringValueOK()
	switch op {
	case "i", "u", "d":
		ns, _ := e.Lookup("ns").StringValueOK()
		set, ok := p.only[splitNS(ns)]
		if !ok {
			return e, true
		}
		holder := e.Lookup("o")
		if op == "u" {
			holder = e.Lookup("o2")
		}
		d, _ := holder.DocumentOK()
		return e, set.has(d.Lookup("_id"))
	case "c":
		o, _ := e.Lookup("o").DocumentOK()
		ops, ok := o.Lookup("applyOps").ArrayOK()
		if !ok {
			return e, true
		}
		return replaceField(e, "o", replaceField(o, "applyOps", p.restrictOps(ops))), true
	}
	return e, true
}

func (p *Plan) restrictOps(ops bson.RawArray) bson.A {
	vals, _ := ops.Values()
	out := bson.A{}
	for _, v := range vals {
		d, ok := v.DocumentOK()
		if !ok {
			out = append(out, v)
			continue
		}
		if kept, ok := p.restrictEntry(d); ok {
			out = append(out, kept)
		}
	}
	return out
}

// replaceField copies doc with the value of its field name replaced, in
// place, every other field as it was.
func replaceField(doc bson.Raw, name string, value any) bson.Raw {
	var d bson.D
	for _, el := range mustElements(doc) {
		v := any(el.Value())
		if el.Key() == name {
			v = value
		}
		d = append(d, bson.E{Key: el.Key(), Value: v})
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		return doc
	}
	return raw
}
