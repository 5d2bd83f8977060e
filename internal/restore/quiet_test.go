package restore_test

import (
	"context"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A snapshot taken while nothing wrote needs no replay: its data holds the
// effect of the entry at its start (the newest before the copy), so the
// restore neither applies that entry nor, having replayed nothing, counts
// the target's documents; it only loads. On MongoDB the entry at the start
// is still replayed, as its copy reads at majority (see
// restore.startInData's doc): there the test checks the restored data only.
func TestQuietSnapshotNeedsNoReplay(t *testing.T) {
	ctx := context.Background()
	srv := testserver.Start(t)
	db := srv.DB("quiet")
	for _, coll := range []string{"a", "b"} {
		var docs []any
		for i := range 300 {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "coll", Value: coll}})
		}
		_, err := srv.Client().Database(db).Collection(coll).InsertMany(ctx, docs)
		must(t, err)
	}
	r, src := newRepoAndSource(t, srv)
	_, err := snapshot.Take(ctx, src, r, snapshot.Options{Parallel: 1, Log: testLogger(t)})
	must(t, err)

	tgt := testserver.Start(t)
	tdb := tgt.DB("quietr")
	var mu sync.Mutex
	var reads []string // commands that read or rewrite the target's documents
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		switch e.CommandName {
		case "find", "count", "aggregate", "update", "delete":
			if e.DatabaseName == tdb {
				mu.Lock()
				reads = append(reads, e.Command.String())
				mu.Unlock()
			}
		}
	}}
	client, err := mongo.Connect(options.Client().ApplyURI(tgt.URI()).SetMonitor(mon))
	must(t, err)
	defer disconnect(client)

	cat, err := catalog.Load(ctx, r)
	must(t, err)
	p, err := restore.Build(cat, restore.Request{To: restore.When{Latest: true}, Include: []string{db}, Rename: map[string]string{db: tdb}})
	must(t, err)
	must(t, restore.Resolve(ctx, r, &p)) // the figures a dry run shows
	rep, err := restore.Execute(ctx, r, client, p, restore.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)

	for _, n := range rep.Namespaces {
		got, err := tgt.Client().Database(n.Target.DB).Collection(n.Target.Coll).CountDocuments(ctx, bson.D{})
		must(t, err)
		if got != 300 || n.Final != 300 || n.Loaded != 300 {
			t.Fatalf("%s holds %d documents, the report says %d loaded and %d now; want 300", n.Target, got, n.Loaded, n.Final)
		}
	}
	if len(rep.Namespaces) != 2 {
		t.Fatalf("restored %d collections, want 2: %+v", len(rep.Namespaces), rep.Namespaces)
	}
	if p.StartInData != srv.FerretDB() {
		t.Fatalf("plan of a snapshot of FerretDB %v: StartInData %v, want the same", srv.FerretDB(), p.StartInData)
	}
	if !p.StartInData {
		return // MongoDB: the entry at the start is replayed (see above); the data are checked
	}
	if p.Entries != 0 || rep.Entries != 0 || rep.Replay != (restore.Report{}).Replay {
		t.Fatalf("a snapshot with no writes during its copy: plan counts %d entries, the restore replayed %d (%+v); want none",
			p.Entries, rep.Entries, rep.Replay)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reads) > 0 {
		t.Fatalf("the restore read or rewrote the target's documents after loading them (a scan each on FerretDB): %v", reads)
	}
}
