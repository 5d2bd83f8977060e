package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/verify"
)

// TestTrialRestore restores the newest point and a snapshot's own point
// into an empty server and checks the counts; a server holding data is
// refused.
func TestTrialRestore(t *testing.T) {
	f := newFixture(t, 30)
	ctx := context.Background()
	srv := testserver.Start(t)
	tr, err := verify.TrialRestore(ctx, f.r, srv.Client(), restore.When{Latest: true}, nil)
	must(t, err)
	if len(tr.Problems) != 0 || tr.Point != f.segs[29].Last || len(tr.Namespaces) != 1 {
		t.Fatalf("trial restore of the newest point: %+v", tr)
	}
	ns := tr.Namespaces[0]
	if ns.Loaded != ns.Recorded || ns.Final != 120 { // 4 entries an hour, 30 hours
		t.Fatalf("namespace %+v; want the recorded count loaded and 120 documents at the end", ns)
	}
	t.Logf("trial restore: %s from %s, %d entries, %+v", tr.Point, tr.Snapshot, tr.Entries, tr.Namespaces)

	_, err = verify.TrialRestore(ctx, f.r, srv.Client(), restore.When{Latest: true}, nil)
	if !errors.Is(err, verify.ErrScratchNotEmpty) || !strings.Contains(err.Error(), "holds d") {
		t.Fatalf("trial restore into a deployment with data: %v; want ErrScratchNotEmpty naming the database", err)
	}
	must(t, srv.Client().Database("d").Drop(ctx))

	snap := f.snaps[1]
	tr, err = verify.TrialRestore(ctx, f.r, srv.Client(), restore.When{TS: snap.End}, nil)
	must(t, err)
	if len(tr.Problems) != 0 || tr.Point != snap.End || tr.Namespaces[0].Final != snap.Collections[0].Count {
		t.Fatalf("trial restore of snapshot %s's own point: %+v", snap.ID, tr)
	}
	n, err := srv.Client().Database("d").Collection("c").CountDocuments(ctx, bson.D{})
	must(t, err)
	if n != snap.Collections[0].Count {
		t.Fatalf("server holds %d documents, snapshot recorded %d", n, snap.Collections[0].Count)
	}
}

// A repository whose timeline and snapshot do not say their flavor is
// replayed as its config's source flavor, in a trial restore as in
// `rewind restore` (one planning path): FerretDB logs an update that
// removed field b as a whole-document $set, which only a replacement
// replays right.
func TestTrialRestoreFlavorFallback(t *testing.T) {
	srv := testserver.Start(t)
	db := srv.DB("fl")
	r := restoretest.New(t, restoretest.Spec{ConfigFlavor: "ferretdb",
		Collections: []restoretest.Collection{{DB: db, Name: "c", Docs: []bson.D{{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}}}}},
		Entries: []bson.D{restoretest.Update(db+".c", 1, bson.D{{Key: "$v", Value: 1},
			{Key: "$set", Value: bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}}}})}})
	tr, err := verify.TrialRestore(context.Background(), r.Repository, srv.Client(), restore.When{Latest: true}, nil)
	must(t, err)
	var got bson.D
	must(t, srv.Client().Database(db).Collection("c").FindOne(context.Background(), bson.D{}).Decode(&got))
	if len(got) != 2 || len(tr.Problems) != 0 {
		t.Fatalf("after the trial restore the document is %v (problems %v); want {_id: 1, a: 1}: the update replayed as FerretDB's replacement", got, tr.Problems)
	}
}
