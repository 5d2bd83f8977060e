package replay

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Deferred index builds (shared/oplog/README.md §6.4): a fuzzy snapshot can
// hold two documents that transiently share a unique value the window later
// resolves, so building a unique index when its entry is read can fail where
// the source never did. With DeferIndexes the Applier keeps a catalog of the
// indexes the window creates, follows drops, renames, dropIndexes and collMod
// of them, and BuildIndexes builds what is left at the end, as mongorestore
// and initial sync do.

// deferredIndex is an index the window created, under its target namespace.
type deferredIndex struct {
	db, coll, name string
	spec           bson.Raw // without ns and v
}

// BuildIndexes builds the indexes deferred by DeferIndexes, on the
// collections that exist at the end of the replay, and empties the catalog.
// Call it once the last entry of the window is applied.
func (a *Applier) BuildIndexes(ctx context.Context) (int, error) {
	built := 0
	for len(a.deferred) > 0 {
		first := a.deferred[0]
		var specs []bson.RawValue
		rest := a.deferred[:0:0]
		for _, d := range a.deferred {
			if d.db == first.db && d.coll == first.coll {
				specs = append(specs, docValue(d.spec))
			} else {
				rest = append(rest, d)
			}
		}
		if err := a.buildIndexes(ctx, first.db, first.coll, specs); err != nil {
			return built, fmt.Errorf("build indexes of %s.%s: %w", first.db, first.coll, err)
		}
		built += len(specs)
		a.deferred = rest
	}
	return built, nil
}

// DeferredIndexes reports how many index builds wait for BuildIndexes.
func (a *Applier) DeferredIndexes() int { return len(a.deferred) }

// normalizeSpecs drops the legacy ns and the version v (left to the
// server's default, 2 on every supported release: servers other than
// MongoDB refuse it).
func normalizeSpecs(specs []bson.RawValue) ([]bson.Raw, error) {
	out := make([]bson.Raw, len(specs))
	for i, s := range specs {
		if s.Type != bson.TypeEmbeddedDocument {
			return nil, fmt.Errorf("%w: index spec is %s", errEntry, s.Type)
		}
		out[i] = build(without(mustElems(s.Document()), "ns", "v"))
	}
	return out, nil
}

// createIndexes replays createIndexes/commitIndexBuild: now, or into the
// catalog with DeferIndexes.
func (a *Applier) createIndexes(ctx context.Context, t collNS, specs []bson.RawValue) error {
	if !a.DeferIndexes {
		return a.buildIndexes(ctx, t.tdb, t.tcoll, specs)
	}
	norm, err := normalizeSpecs(specs)
	if err != nil {
		return err
	}
	for _, s := range norm {
		name, _ := s.Lookup("name").StringValueOK()
		a.forgetIndexes(func(d deferredIndex) bool { return d.db == t.tdb && d.coll == t.tcoll && d.name == name })
		a.deferred = append(a.deferred, deferredIndex{db: t.tdb, coll: t.tcoll, name: name, spec: s})
	}
	return nil
}

// buildIndexes builds indexes on an existing collection; on a missing one it
// does nothing (the snapshot lacks it because a later entry drops it).
func (a *Applier) buildIndexes(ctx context.Context, db, coll string, specs []bson.RawValue) error {
	exists, err := a.collExists(ctx, db, coll)
	if err != nil || !exists {
		return err
	}
	norm, err := normalizeSpecs(specs)
	if err != nil {
		return err
	}
	return a.run(ctx, db, createIndexesCmd(coll, norm), codeIndexAlreadyExists, codeIndexOptsConflict, codeIndexKeysConflict, codeNamespaceNotFound)
}

// createIndexesCmd is {createIndexes: coll, indexes: specs}.
func createIndexesCmd(coll string, specs []bson.Raw) bson.Raw {
	vals := make([]bson.RawValue, len(specs))
	for i, s := range specs {
		vals[i] = docValue(s)
	}
	return build([]elem{{"createIndexes", stringValue(coll)}, {"indexes", arrayValue(buildArray(vals))}})
}

func (a *Applier) forgetIndexes(match func(deferredIndex) bool) {
	kept := a.deferred[:0]
	for _, d := range a.deferred {
		if !match(d) {
			kept = append(kept, d)
		}
	}
	a.deferred = kept
}

// forgetCollection drops the catalog entries of a dropped collection.
func (a *Applier) forgetCollection(db, coll string) {
	a.forgetIndexes(func(d deferredIndex) bool { return d.db == db && d.coll == coll })
}

// moveIndexes follows a rename in the catalog.
func (a *Applier) moveIndexes(fromDB, fromColl, toDB, toColl string) {
	a.forgetCollection(toDB, toColl)
	for i, d := range a.deferred {
		if d.db == fromDB && d.coll == fromColl {
			a.deferred[i].db, a.deferred[i].coll = toDB, toColl
		}
	}
}

// forgetDropped removes the catalog entries a dropIndexes names: an index
// name, "*" (all but _id) or a key pattern.
func (a *Applier) forgetDropped(t collNS, index bson.RawValue) {
	a.forgetIndexes(func(d deferredIndex) bool {
		if d.db != t.tdb || d.coll != t.tcoll {
			return false
		}
		if s, ok := index.StringValueOK(); ok {
			return s == "*" || s == d.name
		}
		key, _ := d.spec.LookupErr("key")
		return index.Type == bson.TypeEmbeddedDocument && key.Equal(index)
	})
}

// collModDeferred applies a collMod's index change to a deferred index and
// reports whether it did (the server has no such index yet).
func (a *Applier) collModDeferred(t collNS, index bson.RawValue) bool {
	if index.Type != bson.TypeEmbeddedDocument {
		return false
	}
	for i, d := range a.deferred {
		if d.db == t.tdb && d.coll == t.tcoll && changesIndex(index.Document(), d.spec) {
			a.deferred[i].spec = changeIndex(d.spec, index.Document())
			return true
		}
	}
	return false
}

// changesIndex reports whether collMod's index change ({name | keyPattern,
// ...}) names the index spec.
func changesIndex(change, spec bson.Raw) bool {
	name, _ := lookup(change, "name")
	pattern, hasPattern := lookup(change, "keyPattern")
	sname, _ := lookup(spec, "name")
	key, _ := lookup(spec, "key")
	return name.Type == bson.TypeString && sname.Equal(name) || hasPattern && key.Equal(pattern)
}

// changeIndex applies collMod's index change (expireAfterSeconds, hidden,
// prepareUnique, unique) to a spec as the server does: hidden: false
// removes hidden, unique: true replaces prepareUnique.
func changeIndex(spec, change bson.Raw) bson.Raw {
	fields := mustElems(spec)
	for _, c := range mustElems(change) {
		switch {
		case c.key == "name" || c.key == "keyPattern":
		case c.key == "hidden" && !truthy(c.val):
			fields = without(fields, "hidden")
		case c.key == "unique":
			fields = setField(without(fields, "prepareUnique"), c)
		default:
			fields = setField(fields, c)
		}
	}
	return build(fields)
}

func setField(fields []elem, f elem) []elem {
	for i := range fields {
		if fields[i].key == f.key {
			fields[i] = f
			return fields
		}
	}
	return append(fields, f)
}
