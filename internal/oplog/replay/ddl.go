package replay

import (
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// dropDatabase drops every collection of the database that Map keeps under
// its own name in the target database Map(db, "$cmd"). Since 4.2 the server
// logs a drop per collection first, so this mostly finds nothing left.
func (a *Applier) dropDatabase(ctx context.Context, db string) error {
	tdb, _, ok := a.mapNS(db, "$cmd")
	if !ok || internalNS(db, "") {
		a.stats.Skipped++
		return nil
	}
	a.stats.Commands++
	names, err := a.dst().collections(ctx, tdb, "")
	if err != nil {
		return fmt.Errorf("replay dropDatabase of %s: %w", db, err)
	}
	for _, n := range names {
		if mdb, mcoll, ok := a.mapNS(db, n); !ok || mdb != tdb || mcoll != n {
			continue // not this source database's collection
		}
		a.forgetCollection(tdb, n)
		if err := a.run(ctx, tdb, cmdDoc("drop", n, nil), codeNamespaceNotFound); err != nil {
			return fmt.Errorf("replay dropDatabase of %s: drop %s: %w", db, n, err)
		}
	}
	return nil
}

// rename replays renameCollection (full names in o). When Map filters out
// one side, the result is what the restored set should hold: a source moved
// out of it is dropped; a target replaced by data from outside it is dropped
// if the entry dropped it (dropTarget), with a warning.
func (a *Applier) rename(ctx context.Context, o bson.Raw) error {
	from, _ := lookup(o, "renameCollection")
	to, _ := lookup(o, "to")
	if from.Type != bson.TypeString || to.Type != bson.TypeString {
		return fmt.Errorf("%w: renameCollection without from/to names", errEntry)
	}
	sdb, scoll, err := splitNS(from.StringValue())
	if err != nil {
		return err
	}
	ddb, dcoll, err := splitNS(to.StringValue())
	if err != nil {
		return err
	}
	dt, _ := lookup(o, "dropTarget")
	dropTarget := truthy(dt) // false, or the dropped target's UUID
	tsdb, tscoll, sok := a.mapNS(sdb, scoll)
	tddb, tdcoll, dok := a.mapNS(ddb, dcoll)
	sok = sok && !internalNS(sdb, scoll)
	dok = dok && !internalNS(ddb, dcoll)
	if a.temp[sdb+"."+scoll] {
		delete(a.temp, sdb+"."+scoll)
	}
	a.stats.Commands++
	switch {
	case sok && dok:
		if tsdb == tddb && tscoll == tdcoll {
			return nil
		}
		err = a.renameColl(ctx, tsdb+"."+tscoll, tddb+"."+tdcoll, dropTarget)
		if err == nil {
			a.moveIndexes(tsdb, tscoll, tddb, tdcoll)
		}
	case sok:
		a.log().Info("replay: rename target is filtered out; dropping the source", "from", from.StringValue(), "to", to.StringValue())
		a.forgetCollection(tsdb, tscoll)
		err = a.run(ctx, tsdb, cmdDoc("drop", tscoll, nil), codeNamespaceNotFound)
	case dok && dropTarget:
		a.log().Warn("replay: rename source is filtered out; dropping the target it replaced", "from", from.StringValue(), "to", to.StringValue())
		a.forgetCollection(tddb, tdcoll)
		err = a.run(ctx, tddb, cmdDoc("drop", tdcoll, nil), codeNamespaceNotFound)
	default:
		a.stats.Commands--
		a.stats.Skipped++
	}
	if err != nil {
		return fmt.Errorf("replay renameCollection %s to %s: %w", from.StringValue(), to.StringValue(), err)
	}
	return nil
}

// renameColl renames a collection on the target. dropTarget is done as a
// drop of the target followed by a plain rename, only when the source exists
// (as the server's applier, which skips the whole entry otherwise): that is
// exact for replay and works on servers without dropTarget.
func (a *Applier) renameColl(ctx context.Context, from, to string, dropTarget bool) error {
	if dropTarget {
		fdb, fcoll, _ := strings.Cut(from, ".")
		exists, err := a.collExists(ctx, fdb, fcoll)
		if err != nil || !exists {
			return err
		}
		tdb, tcoll, _ := strings.Cut(to, ".")
		if err := a.run(ctx, tdb, cmdDoc("drop", tcoll, nil), codeNamespaceNotFound); err != nil {
			return err
		}
	}
	cmd := build([]elem{{"renameCollection", stringValue(from)}, {"to", stringValue(to)}})
	// Source missing (the snapshot saw the rename already), or target
	// present without dropTarget: the server's applier skips both.
	return a.run(ctx, "admin", cmd, codeNamespaceNotFound, codeNamespaceExists)
}

// splitViewID splits a system.views _id ("db.view").
func splitViewID(id bson.RawValue) (db, view string, ok bool) {
	s, isStr := id.StringValueOK()
	if !isStr {
		return "", "", false
	}
	db, view, ok = strings.Cut(s, ".")
	return db, view, ok && db != "" && view != ""
}
