package snapshot

import (
	"bytes"
	"context"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// maxParts bounds how many parts one collection is split into.
const maxParts = 64

// split returns the filters of the parts a collection is copied in: one
// empty filter (the whole collection), or _id ranges that together cover it.
//
// Ranges are only used when every _id has one BSON type: a range query
// matches only values of its bounds' type, so with mixed types some
// documents would fall outside every range. Documents inserted after the
// check with another type are covered by the oplog replay, as every write
// after start is. Any problem means no split: correctness never depends on it.
func (cp *copier) split(ctx context.Context, c *collInfo) []bson.D {
	whole := []bson.D{nil}
	if cp.splitBytes <= 0 || c.estBytes < 2*cp.splitBytes {
		return whole
	}
	n := int(min(c.estBytes/cp.splitBytes, maxParts))
	coll := cp.client.Database(c.db).Collection(c.name)
	ids, err := sampleIDs(ctx, coll, n*10)
	if err != nil || len(ids) < n {
		return whole
	}
	typ := ids[0].Type
	for _, id := range ids {
		if id.Type != typ {
			return whole
		}
	}
	other, err := coll.CountDocuments(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$not", Value: bson.D{{Key: "$type", Value: int32(typ)}}}}}},
		options.Count().SetLimit(1))
	if err != nil || other > 0 {
		return whole
	}
	var bounds []bson.RawValue
	for i := 1; i < n; i++ {
		b := ids[i*len(ids)/n]
		if len(bounds) == 0 || !bytes.Equal(bounds[len(bounds)-1].Value, b.Value) {
			bounds = append(bounds, b)
		}
	}
	return rangeFilters(bounds)
}

// sampleIDs returns up to n random _ids of coll in _id order.
func sampleIDs(ctx context.Context, coll *mongo.Collection, n int) ([]bson.RawValue, error) {
	pipeline := mongo.Pipeline{
		{{Key: "$sample", Value: bson.D{{Key: "size", Value: n}}}},
		{{Key: "$project", Value: bson.D{{Key: "_id", Value: 1}}}},
		{{Key: "$sort", Value: bson.D{{Key: "_id", Value: 1}}}},
	}
	cur, err := coll.Aggregate(ctx, pipeline)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var ids []bson.RawValue
	for cur.Next(ctx) {
		v := cur.Current.Lookup("_id")
		v.Value = slices.Clone(v.Value)
		ids = append(ids, v)
	}
	return ids, cur.Err()
}

// rangeFilters turns sorted bounds b1 < b2 < ... into the filters
// _id < b1, b1 <= _id < b2, ..., _id >= bn.
func rangeFilters(bounds []bson.RawValue) []bson.D {
	if len(bounds) == 0 {
		return []bson.D{nil}
	}
	rng := func(ops ...bson.E) bson.D { return bson.D{{Key: "_id", Value: bson.D(ops)}} }
	out := []bson.D{rng(bson.E{Key: "$lt", Value: bounds[0]})}
	for i := 1; i < len(bounds); i++ {
		out = append(out, rng(bson.E{Key: "$gte", Value: bounds[i-1]}, bson.E{Key: "$lt", Value: bounds[i]}))
	}
	return append(out, rng(bson.E{Key: "$gte", Value: bounds[len(bounds)-1]}))
}
