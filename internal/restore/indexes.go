package restore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// indexBuilder builds the snapshot's indexes after the documents are in
// (faster, and no unique index can trip over the fuzzy copy's transient
// duplicates), except that a collection's indexes are built before the
// first DDL entry touching it is replayed, so a later dropIndexes, drop or
// rename applies to them as it did on the source.
type indexBuilder struct {
	client  *mongo.Client
	pending map[Namespace]CollectionPlan // by source namespace
	order   []Namespace
	built   int
}

func newIndexBuilder(client *mongo.Client, p Plan) *indexBuilder {
	b := &indexBuilder{client: client, pending: map[Namespace]CollectionPlan{}}
	for _, c := range p.Collections {
		b.pending[c.Source] = c
		b.order = append(b.order, c.Source)
	}
	return b
}

// beforeDDL builds the indexes of every pending collection a command entry
// in entries touches.
func (b *indexBuilder) beforeDDL(ctx context.Context, entries []bson.Raw) error {
	if len(b.pending) == 0 {
		return nil
	}
	for _, e := range entries {
		for _, ns := range b.touched(e) {
			if c, ok := b.pending[ns]; ok {
				if err := b.build(ctx, c); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// touched lists the source collections a command entry acts on.
func (b *indexBuilder) touched(e bson.Raw) []Namespace {
	if op, _ := e.Lookup("op").StringValueOK(); op != "c" {
		return nil
	}
	ns, _ := e.Lookup("ns").StringValueOK()
	db := splitNS(ns).DB
	o, ok := e.Lookup("o").DocumentOK()
	if !ok {
		return nil
	}
	els, err := o.Elements()
	if err != nil || len(els) == 0 {
		return nil
	}
	name, v := els[0].Key(), els[0].Value()
	switch name {
	case "applyOps":
		var out []Namespace
		_ = eachApplied(v, func(d bson.Raw) error { out = append(out, b.touched(d)...); return nil })
		return out
	case "dropDatabase":
		var out []Namespace
		for ns := range b.pending {
			if ns.DB == db {
				out = append(out, ns)
			}
		}
		return out
	case "renameCollection":
		from, _ := v.StringValueOK()
		return []Namespace{splitNS(from)}
	}
	coll, _ := v.StringValueOK()
	return []Namespace{{db, coll}}
}

func (b *indexBuilder) buildAll(ctx context.Context) error {
	for _, ns := range b.order {
		if c, ok := b.pending[ns]; ok {
			if err := b.build(ctx, c); err != nil {
				return err
			}
		}
	}
	return nil
}

// build creates a collection's indexes (all but _id's, which the server
// makes itself) in one createIndexes command.
func (b *indexBuilder) build(ctx context.Context, c CollectionPlan) error {
	delete(b.pending, c.Source)
	n, err := createIndexes(ctx, b.client, c.Target, c.Manifest.Indexes)
	b.built += n
	return err
}

// createIndexes builds the index specs (as listIndexes shows them) on the
// target collection in one createIndexes command, all but _id's (the
// server makes it itself) and a clustered collection's (its options make
// it); an index the collection has already, built the same, is no change.
// It returns how many specs it sent.
func createIndexes(ctx context.Context, client *mongo.Client, target Namespace, indexes []bson.Raw) (int, error) {
	var specs bson.A
	for _, spec := range indexes {
		if name, _ := spec.Lookup("name").StringValueOK(); name == "_id_" || truthy(spec.Lookup("clustered")) {
			continue
		}
		var d bson.D
		els, err := spec.Elements()
		if err != nil {
			return 0, fmt.Errorf("read index of %s: %w", target, err)
		}
		for _, e := range els {
			// v and ns describe the source's build; the target picks its own.
			if e.Key() == "v" || e.Key() == "ns" {
				continue
			}
			d = append(d, bson.E{Key: e.Key(), Value: e.Value()})
		}
		specs = append(specs, d)
	}
	if len(specs) == 0 {
		return 0, nil
	}
	cmd := bson.D{{Key: "createIndexes", Value: target.Coll}, {Key: "indexes", Value: specs}}
	if err := client.Database(target.DB).RunCommand(ctx, cmd).Err(); err != nil {
		return 0, fmt.Errorf("build indexes of %s: %w", target, err)
	}
	return len(specs), nil
}
