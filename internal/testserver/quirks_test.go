package testserver_test

import (
	"context"
	"math"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestFerretDBQuirks pins down the FerretDB differences docs/TESTING.md lists
// and testserver.FerretDBKinds relies on. If FerretDB is upgraded and one of
// them goes away, this test says which.
func TestFerretDBQuirks(t *testing.T) {
	s := testserver.Start(t)
	if !s.FerretDB() {
		t.Skip("not FerretDB: there are no FerretDB quirks to pin down")
	}
	ctx := context.Background()
	coll := s.Client().Database(s.DB("quirks")).Collection("c")

	refused := map[string]any{
		"decimal128":   bson.NewDecimal128(0x3040000000000000, 1),
		"NaN":          math.NaN(),
		"+Inf":         math.Inf(1),
		"nested array": bson.A{bson.A{1}},
		"MinKey":       bson.MinKey{},
		"MaxKey":       bson.MaxKey{},
		"JavaScript":   bson.JavaScript("1"),
		"symbol":       bson.Symbol("s"),
		"undefined":    bson.Undefined{},
		"DBPointer":    bson.DBPointer{DB: "a.b", Pointer: bson.ObjectID{1}},
	}
	for name, v := range refused {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: name}, {Key: "v", Value: v}}); err == nil {
			t.Errorf("FerretDB now accepts %s: update FerretDBKinds and docs/TESTING.md", name)
		}
	}
	for _, field := range []string{"a.b", "$x"} {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: field}, {Key: field, Value: 1}}); err == nil {
			t.Errorf("FerretDB now accepts the field name %q", field)
		}
	}
	if _, err := s.Client().Database("ünï").Collection("c").InsertOne(ctx, bson.D{{Key: "x", Value: 1}}); err == nil {
		t.Error("FerretDB now accepts a unicode database name")
	}

	// -0.0 comes back as +0.0, and _id is moved to the front.
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "z", Value: math.Copysign(0, -1)}, {Key: "_id", Value: "negzero"}}); err != nil {
		t.Fatal(err)
	}
	var got bson.Raw
	if err := coll.FindOne(ctx, bson.D{{Key: "_id", Value: "negzero"}}).Decode(&got); err != nil {
		t.Fatal(err)
	}
	elems, _ := got.Elements()
	if elems[0].Key() != "_id" {
		t.Errorf("_id is no longer moved to the front: %s", got)
	}
	if math.Signbit(got.Lookup("z").Double()) {
		t.Error("FerretDB now keeps -0.0: NegZero can join FerretDBKinds")
	}

	// A regex with the "x" option is stored, but $addToSet of one into an
	// array that holds one (FerretDB compiles them to compare) closes the connection.
	rx := bson.Regex{Pattern: "a", Options: "x"}
	if _, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: "rx"}, {Key: "arr", Value: bson.A{rx}}}); err != nil {
		t.Fatalf("insert a regex with x: %v", err)
	}
	_, err := coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: "rx"}}, bson.D{{Key: "$addToSet", Value: bson.D{{Key: "arr", Value: rx}}}})
	if err == nil {
		t.Error("FerretDB now compares regexes with the x option: RegexX can join FerretDBKinds")
	} else {
		t.Logf("$addToSet of an x regex: %v", err)
	}

	checkFerretDBOplog(t, s)
}

// checkFerretDBOplog pins the shape of FerretDB's update entries, and that it
// is not a replica set and reports no operationTime.
func checkFerretDBOplog(t *testing.T, s *testserver.Server) {
	ctx := context.Background()
	coll := s.Client().Database(s.DB("quirks")).Collection("oplog")
	coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "a", Value: 1}, {Key: "b", Value: 2}})
	coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$unset", Value: bson.D{{Key: "b", Value: ""}}}})
	last, err := s.Client().Database("local").Collection("oplog.rs").FindOne(ctx, bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		t.Fatalf("read the oplog: %v", err)
	}
	if op := last.Lookup("op").StringValue(); op != "u" {
		t.Fatalf("last oplog entry %s, want an update", last)
	}
	o := last.Lookup("o").Document()
	set, ok := o.Lookup("$set").DocumentOK()
	if !ok || o.Lookup("$v").AsInt64() != 1 || set.Lookup("a").AsInt64() != 1 {
		t.Errorf("update entry is no longer {$v: 1, $set: <whole document>}: %s", last)
	}

	// No DDL entries: create, index and drop leave no "c" entry.
	db := s.Client().Database(s.DB("quirks"))
	db.CreateCollection(ctx, "ddl")
	db.Collection("ddl").Indexes().CreateOne(ctx, mongo.IndexModel{Keys: bson.D{{Key: "x", Value: 1}}})
	db.Collection("ddl").Drop(ctx)
	oplog := s.Client().Database("local").Collection("oplog.rs")
	if n, err := oplog.CountDocuments(ctx, bson.D{{Key: "op", Value: "c"}}); err != nil || n != 0 {
		t.Errorf("FerretDB now logs DDL: %d \"c\" entries (%v)", n, err)
	}

	// Deleting the oldest entry (simulated rollover) is itself logged.
	first, err := oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oplog.DeleteOne(ctx, bson.D{{Key: "_id", Value: first.Lookup("_id")}}); err != nil {
		t.Fatalf("delete the oldest oplog entry: %v", err)
	}
	last, err = oplog.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if last.Lookup("op").StringValue() != "d" || last.Lookup("ns").StringValue() != "local.oplog.rs" {
		t.Errorf("deleting from the oplog is no longer logged as a d entry on local.oplog.rs: %s", last)
	}

	var hello bson.Raw
	hello, err = s.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hello.LookupErr("setName"); err == nil {
		t.Error("FerretDB now answers hello with a setName")
	}
	reply, err := s.Client().Database(s.DB("quirks")).RunCommand(ctx, bson.D{{Key: "insert", Value: "oplog"},
		{Key: "documents", Value: bson.A{bson.D{{Key: "_id", Value: 2}}}}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reply.LookupErr("operationTime"); err == nil || strings.Contains(reply.String(), "clusterTime") {
		t.Errorf("FerretDB now reports operationTime/$clusterTime: %s", reply)
	}
}
