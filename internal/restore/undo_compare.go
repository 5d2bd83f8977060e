package restore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// versions are one document's three versions, at --from (f), at --to (t)
// and in the target (c), each the SHA-256 of its raw BSON, nil when
// absent: deciding needs only their equality, so an undo of a million
// documents holds about a hundred bytes for each.
type versions struct{ f, t, c []byte }

func digest(doc bson.Raw) []byte {
	sum := sha256.Sum256(doc)
	return sum[:]
}

// nsWork is an undo's work in one namespace: the selected _ids, their
// versions, and the collection to re-create first, if any.
type nsWork struct {
	ns       Namespace
	ids      []bson.RawValue
	vs       map[string]*versions // by idKey
	recreate *stagedCollection
}

// compare reads the three versions of every selected document and
// decides it: the dry run's answer, and what apply starts from.
func (u *PreparedUndo) compare(ctx context.Context, client *mongo.Client, from, to *staging, rep *UndoReport) ([]*nsWork, error) {
	atFrom, err := from.collections(ctx)
	if err != nil {
		return nil, err
	}
	var work []*nsWork
	for _, ns := range u.changes.order {
		ids, err := u.changedIDs(ctx, from, ns)
		if err != nil {
			return nil, err
		}
		w := &nsWork{ns: ns, vs: map[string]*versions{}}
		if w.ids, err = u.selectIDs(ctx, from, to, ns, ids); err != nil {
			return nil, err
		}
		nr := UndoNamespace{Namespace: ns, UndoCounts: UndoCounts{NotSelected: int64(len(ids) - len(w.ids))}}
		for _, id := range w.ids {
			w.vs[idKey(id)] = &versions{}
		}
		// The three reads are independent (each sets its own field of the
		// versions): run them at once.
		g, gctx := errgroup.WithContext(ctx)
		for _, side := range []struct {
			coll *mongo.Collection
			set  func(v *versions, d []byte)
		}{
			{from.coll(ns), func(v *versions, d []byte) { v.f = d }},
			{to.coll(ns), func(v *versions, d []byte) { v.t = d }},
			{client.Database(ns.DB).Collection(ns.Coll), func(v *versions, d []byte) { v.c = d }},
		} {
			g.Go(func() error {
				return eachByID(gctx, side.coll, w.ids, func(k string, doc bson.Raw) error {
					side.set(w.vs[k], digest(doc))
					return nil
				})
			})
		}
		if err := g.Wait(); err != nil {
			return nil, err
		}
		for _, id := range w.ids {
			v := w.vs[idKey(id)]
			nr.tally(decide(v.f, v.t, v.c), id, u.Request.Force)
		}
		if w.recreate, err = u.recreation(ctx, client, ns, atFrom); err != nil {
			return nil, err
		}
		nr.Recreated = w.recreate != nil
		rep.add(nr.UndoCounts)
		rep.Namespaces = append(rep.Namespaces, nr)
		work = append(work, w)
	}
	return work, nil
}

// scanFactor: a collection holding at most this many documents per _id
// looked for is read whole rather than by _id.
const scanFactor = 4

// eachByID calls fn with every document of coll whose _id is among ids,
// keyed by idKey: by _id ($in, idChunk at a time) when they are few
// against the collection's size, else in one read of the collection (a
// staging holds little else than them; on servers without an index for
// $in, every batch would read the collection anyway).
func eachByID(ctx context.Context, coll *mongo.Collection, ids []bson.RawValue, fn func(key string, doc bson.Raw) error) error {
	if len(ids) == 0 {
		return nil
	}
	name := coll.Database().Name() + "." + coll.Name()
	n, err := coll.EstimatedDocumentCount(ctx)
	if err != nil {
		return fmt.Errorf("count documents of %s: %w", name, err)
	}
	if n > int64(scanFactor*len(ids)) {
		for len(ids) > 0 {
			batch := ids[:min(idChunk, len(ids))]
			ids = ids[len(batch):]
			docs, err := readByID(ctx, coll, batch, false, nil)
			if err != nil {
				return err
			}
			for k, d := range docs {
				if err := fn(k, d); err != nil {
					return err
				}
			}
		}
		return nil
	}
	want := make(map[string]bool, len(ids))
	for _, id := range ids {
		want[idKey(id)] = true
	}
	cur, err := coll.Find(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("read documents of %s: %w", name, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if k := idKey(cur.Current.Lookup("_id")); want[k] {
			if err := fn(k, cur.Current); err != nil {
				return err
			}
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read documents of %s: %w", name, err)
	}
	return nil
}

// changedIDs are the _ids the range changed in ns: those its entries
// wrote and, for a collection it dropped or emptied, every one it held at
// --from (the staging at --from holds them all).
func (u *PreparedUndo) changedIDs(ctx context.Context, from *staging, ns Namespace) ([]bson.RawValue, error) {
	set := u.changes.ids[ns]
	if u.changes.whole[ns] {
		cur, err := from.coll(ns).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("read the documents of %s as of %s: %w", ns, u.From.Target, err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			set.add(cur.Current.Lookup("_id"))
		}
		if err := cur.Err(); err != nil {
			return nil, fmt.Errorf("read the documents of %s as of %s: %w", ns, u.From.Target, err)
		}
	}
	return set.ids, nil
}

// selectIDs keeps the ids --filter selects: those whose version at --from
// matches it, and of those absent at --from (the range inserted them),
// those whose version at --to matches it. The server evaluates the filter
// on the stagings.
func (u *PreparedUndo) selectIDs(ctx context.Context, from, to *staging, ns Namespace, ids []bson.RawValue) ([]bson.RawValue, error) {
	filter := u.Request.filter()
	if filter == nil {
		return ids, nil
	}
	present, err := readByID(ctx, from.coll(ns), ids, true, nil)
	if err != nil {
		return nil, err
	}
	var absent []bson.RawValue
	for _, id := range ids {
		if _, ok := present[idKey(id)]; !ok {
			absent = append(absent, id)
		}
	}
	matchFrom, err := readByID(ctx, from.coll(ns), ids, true, filter)
	if err != nil {
		return nil, filterError(filter, err)
	}
	matchTo, err := readByID(ctx, to.coll(ns), absent, true, filter)
	if err != nil {
		return nil, filterError(filter, err)
	}
	var out []bson.RawValue
	for _, id := range ids {
		_, f := matchFrom[idKey(id)]
		_, t := matchTo[idKey(id)]
		if f || t {
			out = append(out, id)
		}
	}
	return out, nil
}

func (r UndoRequest) filter() bson.Raw {
	if r.Filter == "" {
		return nil
	}
	f, _ := ParseFilter("filter", r.Filter) // checked by Validate
	return f
}

// filterError names a query the server refused as bad input.
func filterError(filter bson.Raw, err error) error {
	var se mongo.ServerError
	if errors.As(err, &se) {
		return invalid("filter", "%s: the target's server refuses the query: %v", show(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: filter}), err)
	}
	return err
}

// recreation is the collection to re-create as it was at --from: the range
// dropped it (or its database), it existed at --from, and the target lacks it.
func (u *PreparedUndo) recreation(ctx context.Context, client *mongo.Client, ns Namespace, atFrom []stagedCollection) (*stagedCollection, error) {
	if !u.changes.whole[ns] {
		return nil, nil
	}
	for i, c := range atFrom {
		if c.Source != ns {
			continue
		}
		lister := collectionLister{client: client, byDB: map[string]map[string]bson.Raw{}}
		spec, err := lister.spec(ctx, ns)
		if err != nil || spec != nil {
			return nil, err
		}
		return &atFrom[i], nil
	}
	return nil, nil
}

// verdict is what an undo does with one document.
type verdict int

const (
	unchanged  verdict = iota // nothing to do
	restored                  // replace the target's version (the one at --to) by the one at --from
	reinserted                // insert the version at --from (the target lacks it, as at --to)
	deleted                   // delete the target's version (the one at --to; none at --from)
	conflict                  // the target's version is not the one at --to: changed since
)

// decide is the undo of one document from its versions at --from (f), at
// --to (t) and in the target now (c), compared byte for byte (as raw BSON
// or as digests of it), nil when absent. A document the range left as it
// was (f = t), or that the target holds as it was at --from already (c =
// f: an undo run again), is unchanged; one the target holds as at --to is
// put back; any other was changed since --to: a conflict.
func decide(f, t, c []byte) verdict {
	switch {
	case bytes.Equal(f, t), bytes.Equal(c, f):
		return unchanged
	case !bytes.Equal(c, t):
		return conflict
	case f == nil:
		return deleted
	case c == nil:
		return reinserted
	}
	return restored
}

// tally counts one verdict in a namespace's report.
func (n *UndoNamespace) tally(v verdict, id bson.RawValue, force bool) {
	n.Changed++
	switch v {
	case unchanged:
		n.Unchanged++
		return
	case restored:
		n.Restored++
	case reinserted:
		n.Reinserted++
	case deleted:
		n.Deleted++
	case conflict:
		if len(n.Conflicts) < UndoSample {
			n.Conflicts = append(n.Conflicts, id)
		}
		if !force {
			n.ConflictsLeft++
			return
		}
		n.ConflictsForced++
	}
	if len(n.Sample) < UndoSample {
		n.Sample = append(n.Sample, id)
	}
}
