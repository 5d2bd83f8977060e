package replay

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Views are not DDL entries: the server stores their definitions in
// <db>.system.views and logs those writes as CRUD (§6.3). viewWrite turns
// them into create, collMod and drop of the view.
func (a *Applier) viewWrite(ctx context.Context, e entry, db string) error {
	idDoc := e.o
	if e.op == "u" {
		idDoc = e.o2
	}
	id, err := docID(idDoc)
	if err != nil {
		return err
	}
	_, view, ok := splitViewID(id)
	if !ok {
		return fmt.Errorf("%w: system.views _id %s is not db.view", errEntry, id)
	}
	tdb, tview, ok := a.mapNS(db, view)
	if !ok {
		a.stats.Skipped++
		return nil
	}
	a.stats.Commands++
	switch e.op {
	case "i":
		err = a.defineView(ctx, db, tdb, tview, e.o, false)
	case "u":
		err = a.updateView(ctx, db, tdb, tview, id, e.o)
	default:
		err = a.run(ctx, tdb, cmdDoc("drop", tview, nil), codeNamespaceNotFound)
	}
	if err != nil {
		return fmt.Errorf("replay view %s.%s: %w", db, view, err)
	}
	return nil
}

// defineView creates the view from its definition document, or changes it
// with collMod when it exists (an insert replayed over a fuzzy snapshot).
// viewOn names a source collection unless mapped is set.
func (a *Applier) defineView(ctx context.Context, db, tdb, tview string, def bson.Raw, mapped bool) error {
	on, _ := lookup(def, "viewOn")
	pipeline, _ := lookup(def, "pipeline")
	if on.Type != bson.TypeString || pipeline.Type != bson.TypeArray {
		return fmt.Errorf("%w: view definition without viewOn and pipeline", errEntry)
	}
	target := on.StringValue()
	if !mapped {
		odb, ocoll, ok := a.mapNS(db, target)
		if !ok || odb != tdb {
			a.log().Warn("replay: view skipped: the collection it reads is not restored into the same database", "view", tview, "viewOn", target)
			return nil
		}
		target = ocoll
	}
	cmd := []elem{{"create", stringValue(tview)}, {"viewOn", stringValue(target)}, {"pipeline", pipeline}}
	if c, ok := lookup(def, "collation"); ok {
		cmd = append(cmd, elem{"collation", c})
	}
	err := a.dst().command(ctx, tdb, build(cmd))
	if err == nil || !hasCode(err, codeNamespaceExists) {
		return err
	}
	mod := []elem{{"collMod", stringValue(tview)}, {"viewOn", stringValue(target)}, {"pipeline", pipeline}}
	return a.run(ctx, tdb, build(mod))
}

// updateView applies an update of a view definition to the target's current
// definition, then sets the result with collMod.
func (a *Applier) updateView(ctx context.Context, db, tdb, tview string, id bson.RawValue, o bson.Raw) error {
	tid := stringValue(tdb + "." + tview)
	found := map[string]bson.Raw{}
	if err := a.dst().find(ctx, tdb, "system.views", []bson.RawValue{tid}, false, found); err != nil {
		return fmt.Errorf("read view definition: %w", err)
	}
	cur := found[idKey(tid)]
	if cur == nil {
		a.stats.Skipped++ // the view is gone: a later entry explains it
		return nil
	}
	next, err := a.newDocument(cur, tid, o)
	if err != nil {
		return err
	}
	oldOn, _ := lookup(cur, "viewOn")
	newOn, _ := lookup(next, "viewOn")
	return a.defineView(ctx, db, tdb, tview, next, oldOn.Equal(newOn))
}
