package replay

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Server error codes the oplog applier accepts as success (§9).
const (
	codeNamespaceNotFound  = 26
	codeIndexNotFound      = 27
	codeNamespaceExists    = 48
	codeIndexAlreadyExists = 68
	codeIndexOptsConflict  = 85
	codeIndexKeysConflict  = 86
)

// ignoredCommands carry nothing to replay (§6.2): the matching
// commitIndexBuild carries the index specs; the rest is internal.
var ignoredCommands = map[string]bool{
	"startIndexBuild": true, "abortIndexBuild": true, "dbCheck": true,
	"setMultikeyMetadata": true, "modifyCollectionShardingIndexCatalog": true,
	"createGlobalIndex": true, "dropGlobalIndex": true,
}

// command replays an op "c" entry (or one inside applyOps).
func (a *Applier) command(ctx context.Context, e entry, depth int) error {
	db, _, err := splitNS(e.ns)
	if err != nil {
		return err
	}
	es, err := elems(e.o)
	if err != nil || len(es) == 0 {
		return fmt.Errorf("%w: empty command", errEntry)
	}
	name := es[0].key
	switch {
	case name == "applyOps":
		return a.applyOps(ctx, e, depth)
	case name == "commitTransaction":
		return a.commitTxn(ctx, e, depth)
	case name == "abortTransaction":
		return a.abortTxn(e)
	case ignoredCommands[name] || db == "local" || db == "config":
		a.stats.Skipped++
		return nil
	case name == "importCollection":
		return errors.New("importCollection cannot be replayed: its data came from files, not from the oplog; take a new snapshot after the import")
	case name == "dropDatabase":
		return a.dropDatabase(ctx, db)
	case name == "renameCollection":
		return a.rename(ctx, e.o)
	}
	run, ok := collCommands[name]
	if !ok {
		return fmt.Errorf("unknown command %q: %s", name, unknownAdvice)
	}
	if es[0].val.Type != bson.TypeString {
		return fmt.Errorf("%w: %s names no collection", errEntry, name)
	}
	coll := es[0].val.StringValue()
	tdb, tcoll, ok := a.mapNS(db, coll)
	if internalNS(db, coll) || !ok {
		a.stats.Skipped++
		return nil
	}
	a.stats.Commands++
	if err := run(a, ctx, collNS{db: db, coll: coll, tdb: tdb, tcoll: tcoll}, es[1:]); err != nil {
		return fmt.Errorf("replay %s of %s.%s: %w", name, db, coll, err)
	}
	return nil
}

// collNS is a collection command's namespace, in the source and the target.
type collNS struct{ db, coll, tdb, tcoll string }

var collCommands = map[string]func(a *Applier, ctx context.Context, t collNS, rest []elem) error{
	"create":           (*Applier).create,
	"drop":             (*Applier).drop,
	"createIndexes":    (*Applier).createIndex,
	"commitIndexBuild": (*Applier).commitIndexBuild,
	"dropIndexes":      (*Applier).dropIndexes,
	"deleteIndexes":    (*Applier).dropIndexes,
	"dropIndex":        (*Applier).dropIndexes,
	"deleteIndex":      (*Applier).dropIndexes,
	"collMod":          (*Applier).collMod,
	"convertToCapped":  (*Applier).convertToCapped,
	"emptycapped":      (*Applier).emptycapped,
}

// run runs a command on a target database, treating the listed error codes
// as success.
func (a *Applier) run(ctx context.Context, db string, cmd bson.Raw, accept ...int) error {
	err := a.dst().command(ctx, db, cmd)
	var se mongo.ServerError
	if err != nil && errors.As(err, &se) {
		for _, c := range accept {
			if se.HasErrorCode(c) {
				a.log().Debug("replay: accepted error", "db", db, "code", c, "err", err)
				return nil
			}
		}
	}
	return err
}

// cmdDoc builds {name: coll, rest... (without the named fields)}.
func cmdDoc(name, coll string, rest []elem, drop ...string) bson.Raw {
	return build(append([]elem{{name, stringValue(coll)}}, without(rest, drop...)...))
}

func stringValue(s string) bson.RawValue {
	return bson.RawValue{Type: bson.TypeString, Value: appendString(s)}
}

func (a *Applier) create(ctx context.Context, t collNS, rest []elem) error {
	if t.coll == "system.views" {
		return nil // created by the server with the first view
	}
	for _, e := range rest {
		if e.key == "temp" && truthy(e.val) {
			if a.temp == nil {
				a.temp = map[string]bool{}
			}
			a.temp[t.db+"."+t.coll] = true
		}
	}
	// idIndex is implied; storageEngine options and recordIdsReplicated
	// (8.x replicated record ids: the source's storage, hidden from change
	// streams too) are the source's business; temp is for the server's own
	// temporary collections. Only o is read: o2 holds the source's storage
	// idents on 8.3+ ({catalogId, ident, idIndexIdent, ...}).
	cmd := cmdDoc("create", t.tcoll, rest, "idIndex", "storageEngine", "recordIdsReplicated", "temp")
	return a.run(ctx, t.tdb, cmd, codeNamespaceExists)
}

func (a *Applier) drop(ctx context.Context, t collNS, _ []elem) error {
	a.forgetCollection(t.tdb, t.tcoll)
	return a.run(ctx, t.tdb, cmdDoc("drop", t.tcoll, nil), codeNamespaceNotFound)
}

func (a *Applier) createIndex(ctx context.Context, t collNS, rest []elem) error {
	spec := build(rest)
	return a.createIndexes(ctx, t, []bson.RawValue{docValue(spec)})
}

func (a *Applier) commitIndexBuild(ctx context.Context, t collNS, rest []elem) error {
	for _, e := range rest {
		if e.key == "indexes" && e.val.Type == bson.TypeArray {
			specs, err := arrayValues(bson.Raw(e.val.Array()))
			if err != nil {
				return err
			}
			return a.createIndexes(ctx, t, specs)
		}
	}
	return fmt.Errorf("%w: commitIndexBuild without indexes", errEntry)
}

func (a *Applier) dropIndexes(ctx context.Context, t collNS, rest []elem) error {
	for _, e := range rest {
		if e.key == "index" {
			a.forgetDropped(t, e.val)
		}
	}
	return a.run(ctx, t.tdb, cmdDoc("dropIndexes", t.tcoll, rest), codeNamespaceNotFound, codeIndexNotFound)
}

func (a *Applier) collMod(ctx context.Context, t collNS, rest []elem) error {
	drop := []string{"noPadding", "usePowerOf2Sizes"}
	for _, e := range rest {
		if e.key == "index" && a.collModDeferred(t, e.val) {
			drop = append(drop, "index") // changed in the catalog; not built yet
		}
	}
	rest = without(rest, drop...)
	if len(rest) == 0 {
		return nil
	}
	return a.run(ctx, t.tdb, cmdDoc("collMod", t.tcoll, rest), codeNamespaceNotFound, codeIndexNotFound)
}

func (a *Applier) convertToCapped(ctx context.Context, t collNS, rest []elem) error {
	a.forgetCollection(t.tdb, t.tcoll) // the conversion keeps only _id
	return a.run(ctx, t.tdb, cmdDoc("convertToCapped", t.tcoll, rest), codeNamespaceNotFound)
}

// emptycapped deletes every document (see serverTarget.emptyCollection).
func (a *Applier) emptycapped(ctx context.Context, t collNS, _ []elem) error {
	return a.dst().emptyCollection(ctx, t.tdb, t.tcoll)
}

func (a *Applier) collExists(ctx context.Context, db, coll string) (bool, error) {
	names, err := a.dst().collections(ctx, db, coll)
	if err != nil {
		return false, err
	}
	return len(names) > 0, nil
}

func without(es []elem, names ...string) []elem {
	out := make([]elem, 0, len(es))
next:
	for _, e := range es {
		for _, n := range names {
			if e.key == n {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func mustElems(d bson.Raw) []elem {
	es, _ := elems(d)
	return es
}
