package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// TestRestoreBasics restores a captured workload into an empty second
// server and into the source itself under new names, and checks the
// refusals: a non-empty target without --drop, then with it.
func TestRestoreBasics(t *testing.T) {
	fx := newFixture(t, fixtureOptions{seed: 7, ops: 600, snapshotsAt: []int{60}, every: 4})
	dbs := workload.Databases(fx.cfg)
	last := fx.marks[len(fx.marks)-1]
	// The points a restore can reach: the marks at or after the snapshot's
	// end (on FerretDB the end is read a second after the copy).
	var restorable []oracle.Mark
	for _, m := range fx.marks {
		if !m.TS.Before(fx.manifests[0].End) {
			restorable = append(restorable, m)
		}
	}
	if len(restorable) < 3 {
		t.Fatalf("only %d marks after the snapshot's end %s: make the workload longer", len(restorable), fx.manifests[0].End)
	}
	ctx := context.Background()

	t.Run("latest into an empty server", func(t *testing.T) {
		srv2 := testserver.Start(t)
		p, rep, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}}, false)
		must(t, err)
		if p.Target != last.TS || rep.LastApplied != last.TS {
			t.Fatalf("latest = %s, last applied %s; want the last entry %s", p.Target, rep.LastApplied, last.TS)
		}
		if err := oracle.Compare(ctx, srv2.Client(), last, oracle.Filter{Include: dbs}); err != nil {
			t.Fatal(err)
		}
		if rep.Documents != p.Documents || rep.Entries == 0 || len(rep.Namespaces) != 6 {
			t.Fatalf("report %+v; want %d documents, some entries, 6 namespaces", rep, p.Documents)
		}
		// Again: the target is not empty now.
		_, _, err = fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}}, false)
		if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), "--drop") {
			t.Fatalf("restore onto a restored deployment: %v; want ErrTargetInTheWay naming --drop", err)
		}
		// With --drop, to an earlier point.
		mid := restorable[len(restorable)-3]
		if _, _, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: at(mid.TS)}, true); err != nil {
			t.Fatal(err)
		}
		if err := oracle.Compare(ctx, srv2.Client(), mid, oracle.Filter{Include: dbs}); err != nil {
			t.Fatalf("after --drop: %v", err)
		}
	})

	t.Run("same server under new names", func(t *testing.T) {
		rename := map[string]string{dbs[0]: fx.srv.DB("back")}
		inc := []string{dbs[0]}
		mark := restorable[len(restorable)/2]
		if _, _, err := fx.restoreTo(t, fx.srv.Client(), restore.Request{To: at(mark.TS), Include: inc, Rename: rename}, false); err != nil {
			t.Fatal(err)
		}
		if err := oracle.Compare(ctx, fx.srv.Client(), mark, oracle.Filter{Include: inc, Rename: rename}); err != nil {
			t.Fatal(err)
		}
		// A collection renamed onto an existing, non-empty one is refused.
		ns := workload.Namespaces(fx.cfg)
		_, _, err := fx.restoreTo(t, fx.srv.Client(), restore.Request{To: at(mark.TS), Include: []string{ns[1].String()},
			Rename: map[string]string{ns[1].String(): ns[0].String()}}, false)
		if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), ns[0].String()) {
			t.Fatalf("rename onto %s: %v; want ErrTargetInTheWay naming it", ns[0], err)
		}
		dropDBs(t, fx.srv.Client(), fx.srv.DB("back"))
	})

	t.Run("unknown namespace and outside the window", func(t *testing.T) {
		_, _, err := fx.restoreTo(t, fx.srv.Client(), restore.Request{To: restore.When{Latest: true}, Include: []string{dbs[0] + ".nope"}}, false)
		if err == nil || !strings.Contains(err.Error(), "matches nothing") {
			t.Fatalf("unknown namespace: %v", err)
		}
		first := fx.marks[0]
		_, _, err = fx.restoreTo(t, fx.srv.Client(), restore.Request{To: at(first.TS)}, false)
		if !errors.Is(err, restore.ErrOutsideWindows) || !strings.Contains(err.Error(), "the first one after it is") {
			t.Fatalf("before the first snapshot: %v", err)
		}
	})

	t.Run("collection created after the snapshot", func(t *testing.T) {
		srv2 := testserver.Start(t)
		late := fx.srv.DB("late")
		_, err := fx.srv.Client().Database(late).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "new"}})
		must(t, err)
		newest, err := oracle.LastOplogTS(ctx, fx.srv.Client())
		must(t, err)
		waitDurable(t, fx.agent, newest, 30*time.Second)
		_, err = srv2.Client().Database(late).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: "precious"}})
		must(t, err)
		_, _, err = fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}}, false)
		if !errors.Is(err, restore.ErrTargetInTheWay) || !strings.Contains(err.Error(), late+".c") {
			t.Fatalf("replay onto a non-empty collection created after the snapshot: %v; want ErrTargetInTheWay naming %s.c", err, late)
		}
		var doc bson.M
		must(t, srv2.Client().Database(late).Collection("c").FindOne(ctx, bson.D{}).Decode(&doc))
		if doc["v"] != "precious" {
			t.Fatalf("the refused restore changed the target: %v", doc)
		}
		// Refused before the first write: not one of the snapshot's collections was created.
		if names, err := srv2.Client().ListDatabaseNames(ctx, bson.D{{Key: "name", Value: bson.D{{Key: "$in", Value: dbs}}}}); err != nil || len(names) > 0 {
			t.Fatalf("the refused restore created %v (%v) before refusing", names, err)
		}
		dropDBs(t, srv2.Client(), dbs...)
		if _, _, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}}, true); err != nil {
			t.Fatal(err)
		}
		must(t, srv2.Client().Database(late).Collection("c").FindOne(ctx, bson.D{}).Decode(&doc))
		if doc["v"] != "new" {
			t.Fatalf("after --drop the late collection holds %v, want the source's document", doc)
		}
		// Only that collection, under another name: the snapshot does not
		// hold it, the oplog does.
		p, rep, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true},
			Include: []string{late + ".c"}, Rename: map[string]string{late: srv2.DB("late2")}}, false)
		must(t, err)
		must(t, srv2.Client().Database(srv2.DB("late2")).Collection("c").FindOne(ctx, bson.D{}).Decode(&doc))
		if doc["v"] != "new" || p.Chunks != 0 || rep.Replay.Inserts != 1 || len(rep.Namespaces) != 1 || rep.Namespaces[0].Final != 1 {
			t.Fatalf("late collection alone: %v, %d chunks read, %+v", doc, p.Chunks, rep.Replay)
		}
		dropDBs(t, srv2.Client(), srv2.DB("late2"))
		dropDBs(t, fx.srv.Client(), late)
	})

	t.Run("missing and corrupted objects", func(t *testing.T) {
		srv2 := testserver.Start(t)
		plan, _, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}, Include: []string{dbs[0]}}, false)
		must(t, err)
		dropDBs(t, srv2.Client(), dbs...)
		dir := strings.TrimPrefix(fx.url, "file://")
		seg := plan.Segments[len(plan.Segments)-1]
		path := filepath.Join(dir, seg.Key)
		orig, err := os.ReadFile(path)
		must(t, err)
		defer os.WriteFile(path, orig, 0o644)
		bad := append([]byte(nil), orig...)
		bad[len(bad)-1] ^= 0xff
		must(t, os.WriteFile(path, bad, 0o644))
		_, _, err = fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}, Include: []string{dbs[0]}}, false)
		if err == nil || !strings.Contains(err.Error(), seg.Key) || !strings.Contains(err.Error(), "the last restore point before it is") {
			t.Fatalf("corrupted segment: %v; want an error naming %s and the last restore point before it", err, seg.Key)
		}
		t.Logf("corrupted segment: %v", err)
		dropDBs(t, srv2.Client(), dbs...)
		// Listed when the plan was made, gone when it is read (a listing
		// cannot show a segment that is already gone: latest moves back).
		cat, err := catalog.Load(ctx, fx.repo)
		must(t, err)
		p2, err := restore.Build(cat, restore.Request{To: restore.When{Latest: true}, Include: []string{dbs[0]}})
		must(t, err)
		must(t, os.Remove(path))
		_, err = restore.Execute(ctx, fx.repo, srv2.Client(), p2, restore.Options{Log: testLogger(t)})
		if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), seg.Key) || !strings.Contains(err.Error(), "the last restore point before it is") {
			t.Fatalf("missing segment: %v; want an error naming %s", err, seg.Key)
		}
		must(t, os.WriteFile(path, orig, 0o644))
		dropDBs(t, srv2.Client(), dbs...)

		chunk := plan.Collections[0].Manifest.Chunks[0]
		cpath := filepath.Join(dir, chunk.Key)
		corig, err := os.ReadFile(cpath)
		must(t, err)
		defer os.WriteFile(cpath, corig, 0o644)
		must(t, os.Remove(cpath))
		_, _, err = fx.restoreTo(t, srv2.Client(), restore.Request{To: restore.When{Latest: true}, Include: []string{dbs[0]}}, false)
		if err == nil || !strings.Contains(err.Error(), chunk.Key) || !strings.Contains(err.Error(), "cannot be restored") {
			t.Fatalf("missing chunk: %v; want an error naming %s", err, chunk.Key)
		}
		t.Logf("missing chunk: %v", err)
	})
}
