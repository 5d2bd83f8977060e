package export

import (
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// touched is what a range of oplog entries writes: the _ids of the
// documents each namespace's entries insert, update or delete (inside
// transactions' applyOps too), and the renames that join namespaces into
// one lineage, so that a document written under a collection's new name is
// held back from the snapshot under its old one. It over-approximates on
// purpose (every entry of the range, committed or not): holding back a
// document the replay then leaves alone costs memory, never correctness.
type touched struct {
	ids    map[string]map[string]struct{} // "db.coll" -> idKey set
	parent map[string]string              // union-find over renamed namespaces
	// members lists, after seal, the namespaces with ids in each lineage
	// (by its root).
	members map[string][]string
	keep    func(db, coll string) bool // the namespaces the export selects
}

func newTouched(keep func(db, coll string) bool) *touched {
	return &touched{ids: map[string]map[string]struct{}{}, parent: map[string]string{}, keep: keep}
}

// idKey identifies a document by its _id's type and bytes.
func idKey(id bson.RawValue) string { return string([]byte{byte(id.Type)}) + string(id.Value) }

// add records one entry (recursing into applyOps).
func (t *touched) add(e bson.Raw) {
	op, _ := e.Lookup("op").StringValueOK()
	ns, _ := e.Lookup("ns").StringValueOK()
	switch op {
	case "i", "d":
		t.doc(ns, e.Lookup("o"))
	case "u":
		t.doc(ns, e.Lookup("o2"))
	case "c":
		cmd, ok := e.Lookup("o").DocumentOK()
		if !ok {
			return
		}
		if ops, ok := cmd.Lookup("applyOps").ArrayOK(); ok {
			vals, _ := ops.Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					t.add(d)
				}
			}
		}
		from, ok1 := cmd.Lookup("renameCollection").StringValueOK()
		to, ok2 := cmd.Lookup("to").StringValueOK()
		if ok1 && ok2 {
			t.union(from, to)
		}
	}
}

// doc records the _id of the document o names in ns.
func (t *touched) doc(ns string, o bson.RawValue) {
	d, ok := o.DocumentOK()
	if !ok {
		return
	}
	id, err := d.LookupErr("_id")
	db, coll, okNS := strings.Cut(ns, ".")
	if err != nil || !okNS || !t.keep(db, coll) {
		return
	}
	set := t.ids[ns]
	if set == nil {
		set = map[string]struct{}{}
		t.ids[ns] = set
	}
	set[idKey(id)] = struct{}{}
}

func (t *touched) root(ns string) string {
	for {
		p, ok := t.parent[ns]
		if !ok || p == ns {
			return ns
		}
		if gp, ok := t.parent[p]; ok {
			t.parent[ns] = gp // path halving
		}
		ns = p
	}
}

func (t *touched) union(a, b string) {
	ra, rb := t.root(a), t.root(b)
	if ra != rb {
		t.parent[ra] = rb
	}
}

// seal groups the namespaces with ids by lineage; call it once the range
// is read.
func (t *touched) seal() {
	t.members = map[string][]string{}
	for ns := range t.ids {
		r := t.root(ns)
		t.members[r] = append(t.members[r], ns)
	}
}

// any reports whether the lineage of ns has a written document.
func (t *touched) any(ns string) bool { return len(t.members[t.root(ns)]) > 0 }

// has reports whether the range writes the document with this idKey under
// ns or any name its lineage had.
func (t *touched) has(ns, key string) bool {
	for _, m := range t.members[t.root(ns)] {
		if _, ok := t.ids[m][key]; ok {
			return true
		}
	}
	return false
}
