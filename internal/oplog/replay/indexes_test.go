package replay_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestDeferIndexesFuzzyUnique replays a window that creates a unique index
// over a fuzzy snapshot holding a transient duplicate (doc 1 copied before
// it changed from "a" to "c", doc 2 after it changed from "b" to "a"). Built
// when read, the index fails; deferred, it is built once the window resolved
// the duplicate.
func TestDeferIndexesFuzzyUnique(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	c := srv.Client()
	entries := []bson.Raw{
		mustMarshal(t, bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: "app.$cmd"},
			{Key: "o", Value: bson.D{{Key: "createIndexes", Value: "people"}, {Key: "v", Value: 2}, {Key: "unique", Value: true},
				{Key: "key", Value: bson.D{{Key: "u", Value: 1}}}, {Key: "name", Value: "u_1"}}}}),
		mustMarshal(t, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: "app.people"},
			{Key: "o", Value: bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "u", Value: "c"}}}}}}},
			{Key: "o2", Value: bson.D{{Key: "_id", Value: "p1"}}}}),
		mustMarshal(t, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: "app.people"},
			{Key: "o", Value: bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "u", Value: "a"}}}}}}},
			{Key: "o2", Value: bson.D{{Key: "_id", Value: "p2"}}}}),
	}
	for _, deferIndexes := range []bool{false, true} {
		db := srv.DB("app")
		if deferIndexes {
			db = srv.DB("app2")
		}
		coll := c.Database(db).Collection("people")
		if _, err := coll.InsertMany(ctx, []any{bson.D{{Key: "_id", Value: "p1"}, {Key: "u", Value: "a"}}, bson.D{{Key: "_id", Value: "p2"}, {Key: "u", Value: "a"}}}); err != nil {
			t.Fatal(err)
		}
		a := &replay.Applier{Client: c, DeferIndexes: deferIndexes,
			Map: func(_, coll string) (string, string, bool) { return db, coll, true }}
		_, err := a.Apply(ctx, entries)
		if !deferIndexes {
			if err == nil {
				t.Fatal("unique index built over the fuzzy duplicate without an error: the test no longer shows why indexes are deferred")
			}
			t.Logf("built when read: %v", err)
			continue
		}
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if a.DeferredIndexes() != 1 {
			t.Fatalf("%d deferred indexes, want 1", a.DeferredIndexes())
		}
		if n, err := a.BuildIndexes(ctx); err != nil || n != 1 {
			t.Fatalf("build indexes: %d, %v", n, err)
		}
		specs, err := coll.Indexes().ListSpecifications(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range specs {
			found = found || (s.Name == "u_1" && s.Unique != nil && *s.Unique)
		}
		if !found {
			t.Fatalf("unique index u_1 missing after BuildIndexes: %+v", specs)
		}
	}
}
