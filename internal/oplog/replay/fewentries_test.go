package replay_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A replay of a few entries reads the documents it needs by _id equality,
// one query each, never with a $in: FerretDB answers a $in on _id with a
// scan of the whole collection, so a restore whose oplog range holds three
// entries paid a scan of every collection they touched. The replayed
// result is checked too.
func TestFewEntriesReadByIDEquality(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	db := srv.DB("few")
	seed := srv.Client().Database(db).Collection("c")
	var docs []any
	for i := range 200 {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
	}
	if _, err := seed.InsertMany(ctx, docs); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var finds []bson.Raw
	mon := &event.CommandMonitor{Started: func(_ context.Context, e *event.CommandStartedEvent) {
		if e.CommandName == "find" && e.DatabaseName == db {
			mu.Lock()
			finds = append(finds, append(bson.Raw(nil), e.Command...))
			mu.Unlock()
		}
	}}
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Disconnect(context.WithoutCancel(ctx)) }()

	ns := db + ".c"
	entries := []bson.Raw{
		entry(t, bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: 7}, {Key: "v", Value: 7}}}}),
		entry(t, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o2", Value: bson.D{{Key: "_id", Value: 8}}},
			{Key: "o", Value: bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "v", Value: 80}}}}}}}}),
		entry(t, bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: 500}, {Key: "v", Value: 500}}}}),
	}
	a := &replay.Applier{Client: c}
	if _, err := a.Apply(ctx, entries); err != nil {
		t.Fatal(err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(finds) == 0 {
		t.Fatal("the replay read no document: the update of _id 8 needs its current version")
	}
	for _, cmd := range finds {
		id, err := cmd.LookupErr("filter", "_id")
		if err != nil {
			t.Fatalf("find %s: want a filter on _id", cmd)
		}
		if id.Type == bson.TypeEmbeddedDocument {
			t.Fatalf("find %s: want an equality on _id (an operator such as $in scans the collection on FerretDB)", cmd)
		}
	}
	for id, want := range map[int]int{7: 7, 8: 80, 500: 500, 9: 9} {
		var got struct{ V int }
		if err := seed.FindOne(ctx, bson.D{{Key: "_id", Value: id}}).Decode(&got); err != nil {
			t.Fatalf("_id %d: %v", id, err)
		}
		if got.V != want {
			t.Fatalf("_id %d: v = %d, want %d", id, got.V, want)
		}
	}
}

func entry(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	d = append(bson.D{{Key: "ts", Value: bson.Timestamp{T: 1, I: 1}}}, d...)
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
