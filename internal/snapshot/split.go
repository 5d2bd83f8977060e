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
		cp.log.Debug("not splitting", "ns", c.db+"."+c.name, "estimated_bytes", c.estBytes)
		return whole
	}
	n := int(min(c.estBytes/cp.splitBytes, maxParts))
	coll := cp.client.Database(c.db).Collection(c.name)
	ids, err := sampleIDs(ctx, coll, n*10)
	if err != nil {
		// No $sample (FerretDB): walk the _ids in order, keeping every k-th.
		ids, err = everyKthID(ctx, coll, max(1, c.estDocs/int64(n*10)))
	}
	if err != nil || len(ids) < n {
		cp.log.Info("not splitting: sampling _ids failed", "ns", c.db+"."+c.name, "samples", len(ids), "err", err)
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
		cp.log.Info("not splitting: _ids of several types", "ns", c.db+"."+c.name, "err", err)
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

// everyKthID returns every k-th _id of coll in _id order: on MongoDB a
// covered scan of the _id index. Memory stays bounded by the count kept.
func everyKthID(ctx context.Context, coll *mongo.Collection, k int64) ([]bson.RawValue, error) {
	opts := options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetProjection(bson.D{{Key: "_id", Value: 1}})
	cur, err := coll.Find(ctx, bson.D{}, opts)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var ids []bson.RawValue
	for i := int64(0); cur.Next(ctx); i++ {
		if i%k == 0 {
			v := cur.Current.Lookup("_id")
			v.Value = slices.Clone(v.Value)
			ids = append(ids, v)
		}
	}
	return ids, cur.Err()
}
