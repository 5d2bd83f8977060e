package restore

import (
	"context"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// changes is what an oplog range did to the selected namespaces: the
// documents its entries wrote, the collections it dropped or emptied
// (every document they held at the range's start counts as changed), and
// the commands an undo leaves as they are.
type changes struct {
	order []Namespace // in the order the range first names them
	ids   map[Namespace]*idSet
	// deleted are the _ids whose last write in the range is a delete
	// outside a transaction: absent at its end, known without staging.
	deleted    map[Namespace]map[string]bool
	whole      map[Namespace]bool // dropped or emptied: all their documents
	droppedDBs map[string]bool
	notes      map[string]bool
	entries    int64 // entries in the range, every namespace
}

func newChanges() *changes {
	return &changes{ids: map[Namespace]*idSet{}, deleted: map[Namespace]map[string]bool{}, whole: map[Namespace]bool{}, droppedDBs: map[string]bool{}, notes: map[string]bool{}}
}

// readRange reads the entries with from < ts <= to from segs and collects
// what they change in the namespaces m selects. A range that renames a
// selected collection, or converts one to capped (a rename through a
// temporary collection), is refused: undo does not reverse renames.
func readRange(ctx context.Context, r *repo.Repository, segs []repo.SegmentInfo, from, to optime.Timestamp, m Mapper) (*changes, error) {
	c := newChanges()
	last := from
	for sr := range readAhead(ctx, r, segs) {
		if sr.err != nil {
			return nil, fmt.Errorf("read oplog segment %s: %w", sr.seg.Key, sr.err)
		}
		kept, newest, err := inRange(sr.entries, from, to, last)
		if err != nil {
			return nil, fmt.Errorf("read oplog segment %s: %w", sr.seg.Key, err)
		}
		for _, e := range kept {
			if err := c.add(e, m, false); err != nil {
				return nil, err
			}
		}
		c.entries += int64(len(kept))
		last = newest
	}
	return c, ctx.Err()
}

// add records one entry (the operations inside an applyOps too: inTxn).
func (c *changes) add(e bson.Raw, m Mapper, inTxn bool) error {
	op, _ := e.Lookup("op").StringValueOK()
	ns, _ := e.Lookup("ns").StringValueOK()
	n := splitNS(ns)
	switch op {
	case "i", "d", "u":
		if !m.Match(n.DB, n.Coll) {
			return nil
		}
		holder := e.Lookup("o")
		if op == "u" {
			holder = e.Lookup("o2")
		}
		d, _ := holder.DocumentOK()
		id := d.Lookup("_id")
		if id.Type == 0 {
			ts, _ := optime.OfEntry(e)
			return fmt.Errorf("read the range: the %q entry at %s on %s has no _id", op, ts, n)
		}
		c.set(n).add(id)
		c.lastWrite(n, id, op == "d" && !inTxn)
	case "c":
		o, _ := e.Lookup("o").DocumentOK()
		return c.command(e, n.DB, o, m)
	}
	return nil
}

func (c *changes) set(n Namespace) *idSet {
	s, ok := c.ids[n]
	if !ok {
		s = newIDSet()
		c.ids[n] = s
		c.order = append(c.order, n)
	}
	return s
}

// lastWrite notes whether the last write to a document is a plain delete
// (one in a transaction might be aborted).
func (c *changes) lastWrite(n Namespace, id bson.RawValue, plainDelete bool) {
	set, ok := c.deleted[n]
	if !ok {
		set = map[string]bool{}
		c.deleted[n] = set
	}
	if plainDelete {
		set[idKey(id)] = true
	} else {
		delete(set, idKey(id))
	}
}

// command records what a command entry does to the selected namespaces.
func (c *changes) command(e bson.Raw, db string, o bson.Raw, m Mapper) error {
	els, err := o.Elements()
	if err != nil || len(els) == 0 {
		return nil
	}
	name, v := els[0].Key(), els[0].Value()
	ts, _ := optime.OfEntry(e)
	switch name {
	case "applyOps":
		return eachApplied(v, func(d bson.Raw) error { return c.add(d, m, true) })
	case "dropDatabase":
		if len(m.include) == 0 || matchDB(m, db) {
			c.droppedDBs[db] = true
		}
		return nil
	case "renameCollection":
		from, _ := v.StringValueOK()
		to, _ := o.Lookup("to").StringValueOK()
		f, t := splitNS(from), splitNS(to)
		if m.Match(f.DB, f.Coll) || m.Match(t.DB, t.Coll) {
			return fmt.Errorf("plan undo: the range renames %s to %s at %s: undo does not reverse renames; undo a range that ends before it or starts after it, or restore the collection as of --from with `rewind restore --ns %s --rename`", from, to, describeTS(ts), from)
		}
		return nil
	}
	coll, ok := v.StringValueOK()
	if !ok || !m.Match(db, coll) || !collCommands[name] {
		return nil
	}
	n := Namespace{db, coll}
	switch name {
	case "drop", "emptycapped":
		c.whole[n] = true
		c.set(n)
	case "convertToCapped":
		return fmt.Errorf("plan undo: the range converts %s to a capped collection at %s: undo does not reverse that; undo a range that ends before it or starts after it", n, describeTS(ts))
	default:
		c.notes[fmt.Sprintf("%s on %s: undo leaves indexes and collection options as they are", name, n)] = true
	}
	return nil
}

// wholeDBs counts every collection a dropped database held at the range's
// start (in from, the plan of that point) as dropped.
func (c *changes) wholeDBs(from Plan) {
	for db := range c.droppedDBs {
		for _, cp := range from.Collections {
			if cp.Source.DB == db {
				c.whole[cp.Source] = true
				c.set(cp.Source)
			}
		}
		for _, l := range from.Late {
			if l.Source.DB == db && !l.View {
				c.whole[l.Source] = true
				c.set(l.Source)
			}
		}
	}
}

// namespaces is the set of namespaces with changes.
func (c *changes) namespaces() map[Namespace]bool {
	out := map[Namespace]bool{}
	for _, n := range c.order {
		out[n] = true
	}
	return out
}

// empty reports whether the range changed nothing selected.
func (c *changes) empty() bool { return len(c.order) == 0 }

// noteList is the notes, sorted.
func (c *changes) noteList() []string {
	out := make([]string, 0, len(c.notes))
	for n := range c.notes {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
