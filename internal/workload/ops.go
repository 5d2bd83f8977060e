package workload

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// collState is the generator's model of one collection: which _ids exist and
// which documents are empty (just _id). It is exact because writes are
// sequential and every one is checked to have changed exactly one document.
type collState struct {
	ns     Namespace
	coll   *mongo.Collection
	idKind int // 0: ObjectID, 1: int64, 2: string; one kind per collection keeps _id order simple
	salt   uint32
	next   int64
	ids    []any
	pos    map[any]int
	empty  map[any]bool
}

func newCollState(ns Namespace, coll *mongo.Collection, i int, seed uint64) *collState {
	return &collState{ns: ns, coll: coll, idKind: i % 3, salt: uint32(seed>>32) ^ uint32(seed),
		pos: map[any]int{}, empty: map[any]bool{}}
}

// newID makes the next _id deterministically (never ObjectID.New, which
// depends on the clock and the process).
func (c *collState) newID() any {
	c.next++
	switch c.idKind {
	case 0:
		var id bson.ObjectID
		binary.BigEndian.PutUint32(id[:4], c.salt)
		binary.BigEndian.PutUint64(id[4:], uint64(c.next))
		return id
	case 1:
		return c.next * 7 // gaps, like real ids
	default:
		return fmt.Sprintf("key-%06d-ü", c.next)
	}
}

func (c *collState) add(id any, empty bool) {
	c.pos[id] = len(c.ids)
	c.ids = append(c.ids, id)
	c.empty[id] = empty
}

func (c *collState) remove(id any) {
	i := c.pos[id]
	last := c.ids[len(c.ids)-1]
	c.ids[i] = last
	c.pos[last] = i
	c.ids = c.ids[:len(c.ids)-1]
	delete(c.pos, id)
	delete(c.empty, id)
}

// step draws one operation and runs it.
func (r *runner) step(ctx context.Context) error {
	c := r.colls[r.gen.pick(len(r.colls))]
	choice := r.gen.pick(100)
	if len(c.ids) == 0 {
		choice = 0
	}
	seq := int64(r.stats.Ops + 1) // "u": a per-operation counter, so every update changes something
	var err error
	switch {
	case choice < 40:
		err = r.insert(ctx, c, seq)
	case choice < 65:
		err = r.update(ctx, c, seq)
	case choice < 82:
		err = r.replace(ctx, c, seq)
	default:
		err = r.delete(ctx, c)
	}
	if err != nil {
		return err
	}
	r.stats.Ops++
	return nil
}

// body returns a document's fields after _id: sometimes none at all.
func (r *runner) body(seq int64, allowEmpty bool) bson.D {
	if allowEmpty && r.gen.pick(15) == 0 {
		return bson.D{}
	}
	d := bson.D{{Key: "u", Value: seq}}
	if r.gen.pick(2) == 0 {
		d = append(d, bson.E{Key: "n", Value: int64(r.gen.pick(1000))})
	}
	if r.gen.pick(2) == 0 {
		arr := bson.A{}
		for i := r.gen.pick(4); i > 0; i-- {
			arr = append(arr, r.gen.value(1, true))
		}
		d = append(d, bson.E{Key: "arr", Value: arr})
	}
	d = append(d, r.gen.doc(3, false, 6)...)
	if r.cfg.LargeEvery > 0 && r.gen.pick(r.cfg.LargeEvery) == 0 {
		d = append(d, bson.E{Key: "big", Value: r.large()})
	}
	return d
}

func (r *runner) large() any {
	if r.gen.pick(2) == 0 {
		data := make([]byte, r.cfg.LargeSize)
		for i := range data {
			data[i] = byte(r.gen.rng.UintN(256))
		}
		return bson.Binary{Subtype: 0, Data: data}
	}
	piece := r.gen.str(3) + "·"
	return strings.Repeat(piece, r.cfg.LargeSize/len(piece))
}

func (r *runner) insert(ctx context.Context, c *collState, seq int64) error {
	id := c.newID()
	doc := append(bson.D{{Key: "_id", Value: id}}, r.body(seq, true)...)
	raw, err := bson.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode document for %s: %w", c.ns, err)
	}
	if _, err := c.coll.InsertOne(ctx, bson.Raw(raw)); err != nil {
		return fmt.Errorf("insert into %s: %w", c.ns, err)
	}
	c.add(id, len(doc) == 1)
	r.stats.Inserts++
	r.stats.Bytes += int64(len(raw))
	return nil
}

func (r *runner) replace(ctx context.Context, c *collState, seq int64) error {
	id := c.ids[r.gen.pick(len(c.ids))]
	// Replacing an empty document with an empty one changes nothing, and a
	// real server logs nothing for it: keep every write a change.
	body := r.body(seq, !c.empty[id])
	raw, err := bson.Marshal(append(bson.D{{Key: "_id", Value: id}}, body...))
	if err != nil {
		return fmt.Errorf("encode replacement for %s: %w", c.ns, err)
	}
	res, err := c.coll.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.Raw(raw))
	if err != nil {
		return fmt.Errorf("replace in %s: %w", c.ns, err)
	}
	if res.MatchedCount != 1 || res.ModifiedCount != 1 {
		return fmt.Errorf("replace %v in %s: matched %d, modified %d, want 1 and 1", id, c.ns, res.MatchedCount, res.ModifiedCount)
	}
	c.empty[id] = len(body) == 0
	r.stats.Replaces++
	r.stats.Bytes += int64(len(raw))
	return nil
}

func (r *runner) update(ctx context.Context, c *collState, seq int64) error {
	id := c.ids[r.gen.pick(len(c.ids))]
	upd := r.updateDoc(seq)
	res, err := c.coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, upd)
	if err != nil {
		return fmt.Errorf("update in %s: %w", c.ns, err)
	}
	if res.MatchedCount != 1 || res.ModifiedCount != 1 {
		return fmt.Errorf("update %v in %s: matched %d, modified %d, want 1 and 1", id, c.ns, res.MatchedCount, res.ModifiedCount)
	}
	c.empty[id] = false
	r.stats.Updates++
	return nil
}

// updateDoc builds an operator update. Each operator works on its own fields
// ("u" and random fields for $set, "n" for $inc/$mul, "arr" for the array
// operators) so that no two paths conflict and no operator meets a value of
// the wrong type.
func (r *runner) updateDoc(seq int64) bson.D {
	fields := r.gen.fieldSubset(5) // disjoint: two to set, one to unset, a rename pair
	set := bson.D{{Key: "u", Value: seq}}
	for _, f := range fields[:2] {
		if r.gen.pick(2) == 0 {
			set = append(set, bson.E{Key: f, Value: r.gen.value(2, false)})
		}
	}
	upd := bson.D{{Key: "$set", Value: set}}
	if r.gen.pick(2) == 0 {
		upd = append(upd, bson.E{Key: "$unset", Value: bson.D{{Key: fields[2], Value: ""}}})
	}
	if r.gen.pick(3) == 0 {
		upd = append(upd, bson.E{Key: "$rename", Value: bson.D{{Key: fields[3], Value: fields[4]}}})
	}
	switch r.gen.pick(3) {
	case 0:
		upd = append(upd, bson.E{Key: "$inc", Value: bson.D{{Key: "n", Value: int64(r.gen.pick(2001) - 1000)}}})
	case 1:
		upd = append(upd, bson.E{Key: "$mul", Value: bson.D{{Key: "n", Value: int64(-1)}}})
	}
	switch r.gen.pick(4) {
	case 0:
		upd = append(upd, bson.E{Key: "$push", Value: bson.D{{Key: "arr", Value: r.gen.value(1, true)}}})
	case 1:
		upd = append(upd, bson.E{Key: "$addToSet", Value: bson.D{{Key: "arr", Value: r.gen.value(1, true)}}})
	case 2:
		upd = append(upd, bson.E{Key: "$pop", Value: bson.D{{Key: "arr", Value: []int32{1, -1}[r.gen.pick(2)]}}})
	}
	return upd
}

func (r *runner) delete(ctx context.Context, c *collState) error {
	id := c.ids[r.gen.pick(len(c.ids))]
	res, err := c.coll.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
	if err != nil {
		return fmt.Errorf("delete from %s: %w", c.ns, err)
	}
	if res.DeletedCount != 1 {
		return fmt.Errorf("delete %v from %s: deleted %d, want 1", id, c.ns, res.DeletedCount)
	}
	c.remove(id)
	r.stats.Deletes++
	return nil
}
