package replay

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// target is where an Applier's reads, writes and commands go: a server
// through the driver (serverTarget) or a Memory. The Applier decides what to
// write; a target only carries it out and fails the way a MongoDB server
// does (the same error codes), so the idempotency rules of §9 are decided
// in one place, the Applier, for both.
type target interface {
	// find reads into docs (keyed by idKey) the documents of db.coll whose
	// _id is in ids; idOnly reads their _id only. Missing ones are left out.
	find(ctx context.Context, db, coll string, ids []bson.RawValue, idOnly bool, docs map[string]bson.Raw) error
	// bulkWrite applies models (insert, replace or update by _id, delete by
	// _id) to db.coll in order, stopping at the first error.
	bulkWrite(ctx context.Context, db, coll string, models []mongo.WriteModel, opts *options.BulkWriteOptionsBuilder) error
	// command runs a command on database db.
	command(ctx context.Context, db string, cmd bson.Raw) error
	// collections lists the names of db's collections and views; a name
	// other than "" lists only that one, if it exists.
	collections(ctx context.Context, db, name string) ([]string, error)
	// emptyCollection removes every document of db.coll and keeps the
	// collection, its options and its indexes; a missing one is no error.
	emptyCollection(ctx context.Context, db, coll string) error
}

// dst is the Applier's target: its Memory when set, else its Client.
func (a *Applier) dst() target {
	if a.Memory != nil {
		return a.Memory
	}
	return serverTarget{a.Client}
}

// serverTarget is a MongoDB deployment (or any server that speaks its
// protocol) reached through the driver.
type serverTarget struct{ c *mongo.Client }

// pointReads is the most _ids find reads one query each, by an equality
// on _id, instead of one $in query. FerretDB (SQLite) pushes only an _id
// equality down to its storage and answers a $in with a scan of the whole
// collection: a replay of a few entries (the writes during a snapshot's
// copy) paid 0.2-0.7 s per namespace at 32 MB. On MongoDB both are index
// lookups; a few more round trips cost little.
const pointReads = 8

func (s serverTarget) find(ctx context.Context, db, coll string, ids []bson.RawValue, idOnly bool, docs map[string]bson.Raw) error {
	if len(ids) <= pointReads {
		for _, id := range ids {
			if err := s.findFilter(ctx, db, coll, idFilter(id), idOnly, docs); err != nil {
				return err
			}
		}
		return nil
	}
	in := build([]elem{{"$in", arrayValue(buildArray(ids))}})
	return s.findFilter(ctx, db, coll, build([]elem{{"_id", docValue(in)}}), idOnly, docs)
}

// findFilter reads into docs the documents of db.coll that filter selects.
func (s serverTarget) findFilter(ctx context.Context, db, coll string, filter bson.Raw, idOnly bool, docs map[string]bson.Raw) error {
	opts := options.Find()
	if idOnly {
		opts.SetProjection(bson.D{{Key: "_id", Value: 1}})
	}
	cur, err := s.c.Database(db).Collection(coll).Find(ctx, filter, opts)
	if err != nil {
		return fmt.Errorf("read documents of %s.%s: %w", db, coll, err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		doc := append(bson.Raw(nil), cur.Current...)
		id, err := docID(doc)
		if err != nil {
			return err
		}
		docs[idKey(id)] = doc
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("read documents of %s.%s: %w", db, coll, err)
	}
	return nil
}

func (s serverTarget) bulkWrite(ctx context.Context, db, coll string, models []mongo.WriteModel, opts *options.BulkWriteOptionsBuilder) error {
	_, err := s.c.Database(db).Collection(coll).BulkWrite(ctx, models, opts)
	return err
}

func (s serverTarget) command(ctx context.Context, db string, cmd bson.Raw) error {
	return s.c.Database(db).RunCommand(ctx, cmd).Err()
}

func (s serverTarget) collections(ctx context.Context, db, name string) ([]string, error) {
	filter := bson.D{}
	if name != "" {
		filter = bson.D{{Key: "name", Value: name}}
	}
	names, err := s.c.Database(db).ListCollectionNames(ctx, filter)
	if err != nil {
		return nil, fmt.Errorf("list collections of %s: %w", db, err)
	}
	return names, nil
}

// emptyCollection deletes every document. emptycapped is a test command
// (not on production servers), and deleting every document gives the same
// result. Servers that refuse deletes on capped collections (before 5.0)
// get the collection recreated empty instead, with its options and indexes.
func (s serverTarget) emptyCollection(ctx context.Context, db, coll string) error {
	c := s.c.Database(db).Collection(coll)
	_, err := c.DeleteMany(ctx, bson.D{})
	if err == nil {
		return nil
	}
	specs, lerr := s.c.Database(db).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: coll}})
	if lerr != nil || len(specs) != 1 {
		return err // missing, or unreadable: report the delete's error
	}
	cur, lerr := c.Indexes().List(ctx)
	if lerr != nil {
		return fmt.Errorf("list indexes: %w", lerr)
	}
	var indexes []bson.RawValue
	for cur.Next(ctx) {
		if name, _ := cur.Current.Lookup("name").StringValueOK(); name != "_id_" {
			indexes = append(indexes, docValue(append(bson.Raw(nil), cur.Current...)))
		}
	}
	cur.Close(ctx)
	if err := s.command(ctx, db, cmdDoc("drop", coll, nil)); err != nil && !hasCode(err, codeNamespaceNotFound) {
		return err
	}
	if err := s.command(ctx, db, cmdDoc("create", coll, mustElems(specs[0].Options))); err != nil {
		return err
	}
	if len(indexes) == 0 {
		return nil
	}
	norm, err := normalizeSpecs(indexes)
	if err != nil {
		return err
	}
	return s.command(ctx, db, createIndexesCmd(coll, norm))
}

// hasCode reports whether err is a server error with that code.
func hasCode(err error, code int) bool {
	var se mongo.ServerError
	return errors.As(err, &se) && se.HasErrorCode(code)
}
