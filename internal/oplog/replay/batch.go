package replay

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/xoptions"
)

// write is one queued CRUD operation on a target namespace.
type write struct {
	db, coll string
	op       byte // 'i', 'u' or 'd'
	id       bson.RawValue
	o        bson.Raw // the inserted document, or the update's o
}

// idKey identifies a document by its _id's type and bytes.
func idKey(id bson.RawValue) string { return string(rune(id.Type)) + string(id.Value) }

// fetchChunk bounds the ids in one $in query.
const fetchChunk = 500

// flush writes the queued operations: per namespace, it reads in one query
// (per 500 ids) the current version of the documents the batch inserts or
// updates, computes every update in memory, in order, and sends one ordered
// bulk write.
func (a *Applier) flush(ctx context.Context) error {
	if len(a.batch) == 0 {
		return nil
	}
	type nsKey struct{ db, coll string } // no string built per write
	var order []nsKey
	groups := map[nsKey][]write{}
	for _, w := range a.batch {
		k := nsKey{w.db, w.coll}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], w)
	}
	a.batch = a.batch[:0]
	for _, k := range order {
		if err := a.flushNS(ctx, groups[k]); err != nil {
			return err
		}
	}
	return nil
}

func (a *Applier) flushNS(ctx context.Context, ws []write) error {
	db, coll := ws[0].db, ws[0].coll
	docs, err := a.prefetch(ctx, db, coll, ws)
	if err != nil {
		return err
	}
	models, err := a.models(ws, docs, false)
	if err != nil || len(models) == 0 {
		return err
	}
	err = a.bulkWrite(ctx, db, coll, models)
	if mongo.IsDuplicateKeyError(err) {
		// Someone else wrote to the target meanwhile: every model is
		// idempotent once inserts are upserts, so send them all again.
		a.log().Warn("replay: duplicate key on insert, retrying the batch with upserts", "ns", db+"."+coll, "err", err)
		models, _ = a.models(ws, docs, true)
		err = a.bulkWrite(ctx, db, coll, models)
	}
	if err != nil {
		return fmt.Errorf("write %d operations to %s.%s: %w", len(models), db, coll, err)
	}
	a.stats.Inserts += count(ws, 'i')
	a.stats.Deletes += count(ws, 'd')
	return nil
}

// bulkWrite sends models in order, at most WriteBatch per command.
func (a *Applier) bulkWrite(ctx context.Context, db, coll string, models []mongo.WriteModel) error {
	// Entries were validated on the source: a validator added later, or
	// validationLevel moderate, must not refuse them (as the server's applier).
	opts := options.BulkWrite().SetOrdered(true).SetBypassDocumentValidation(true)
	if a.BypassEmptyTsReplacement {
		// The driver adds the field to the insert, update and delete
		// commands alike: servers that know it take it on all three.
		_ = xoptions.SetInternalBulkWriteOptions(opts, "addCommandFields", bson.D{{Key: "bypassEmptyTsReplacement", Value: true}})
	}
	size := a.WriteBatch
	if size <= 0 {
		size = DefaultWriteBatch
	}
	for len(models) > 0 {
		n := min(size, len(models))
		if err := a.dst().bulkWrite(ctx, db, coll, models[:n], opts); err != nil {
			return err
		}
		models = models[n:]
	}
	return nil
}

// models turns the writes into write models, computing updates in memory
// from docs (the prefetched documents, updated as it goes; nil = missing).
// An insert of a missing document is a plain insert (far cheaper than an
// upsert on some servers); of a present one, a replacement (§3).
func (a *Applier) models(ws []write, prefetched map[string]bson.Raw, upsert bool) ([]mongo.WriteModel, error) {
	docs := make(map[string]bson.Raw, len(prefetched))
	for k, v := range prefetched {
		docs[k] = v
	}
	models := make([]mongo.WriteModel, 0, len(ws))
	for _, w := range ws {
		key, filter := idKey(w.id), idFilter(w.id)
		switch w.op {
		case 'i':
			doc := withID(w.o, w.id)
			if docs[key] == nil && !upsert {
				models = append(models, mongo.NewInsertOneModel().SetDocument(doc))
			} else {
				models = append(models, replaceModel(filter, doc, true))
			}
			docs[key] = doc
		case 'd':
			docs[key] = nil
			models = append(models, mongo.NewDeleteOneModel().SetFilter(filter))
		case 'u':
			cur := docs[key]
			if cur == nil {
				if !upsert {
					a.stats.Skipped++ // update of a missing document: no-op, never an upsert (§9)
				}
				continue
			}
			next, err := a.newDocument(cur, w.id, w.o)
			if err != nil {
				return nil, fmt.Errorf("update %s.%s %s: %w", w.db, w.coll, w.id, err)
			}
			docs[key] = next
			models = append(models, replaceModel(filter, next, false))
			if !upsert {
				a.stats.Updates++
			}
		}
	}
	return models, nil
}

// replaceModel replaces the document filter names by doc. MongoDB (5.0+)
// refuses a replacement document holding a top-level field whose name starts
// with $, though it stores such fields; a pipeline update that replaces the
// document with the literal doc writes it exactly, field order included.
func replaceModel(filter, doc bson.Raw, upsert bool) mongo.WriteModel {
	for _, e := range mustElems(doc) {
		if strings.HasPrefix(e.key, "$") {
			lit := build([]elem{{"$literal", docValue(doc)}})
			stage := build([]elem{{"$replaceWith", docValue(lit)}})
			return mongo.NewUpdateOneModel().SetFilter(filter).SetUpdate(bson.A{stage}).SetUpsert(upsert)
		}
	}
	m := mongo.NewReplaceOneModel().SetFilter(filter).SetReplacement(doc)
	if upsert {
		m.SetUpsert(true)
	}
	return m
}

func count(ws []write, op byte) int64 {
	var n int64
	for _, w := range ws {
		if w.op == op {
			n++
		}
	}
	return n
}

// prefetch reads the current version of every document whose first
// operation in ws is an update, and whether those first inserted exist (their
// _id only). The map holds nil for a missing document.
func (a *Applier) prefetch(ctx context.Context, db, coll string, ws []write) (map[string]bson.Raw, error) {
	docs := map[string]bson.Raw{}
	seen := map[string]bool{}
	var updated, inserted []bson.RawValue
	for _, w := range ws {
		k := idKey(w.id)
		switch {
		case seen[k]:
		case w.op == 'u':
			updated = append(updated, w.id)
		case w.op == 'i':
			inserted = append(inserted, w.id)
		}
		seen[k] = true
	}
	for _, set := range []struct {
		ids    []bson.RawValue
		idOnly bool
	}{{updated, false}, {inserted, true}} {
		for ids := set.ids; len(ids) > 0; {
			n := min(len(ids), fetchChunk)
			if err := a.dst().find(ctx, db, coll, ids[:n], set.idOnly, docs); err != nil {
				return nil, err
			}
			ids = ids[n:]
		}
	}
	return docs, nil
}
