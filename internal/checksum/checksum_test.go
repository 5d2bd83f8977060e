package checksum_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}

// The checksum is the SHA-256 of the documents' raw BSON in _id order,
// whatever order they were inserted in; views, system collections and
// unselected namespaces are not summed.
func TestSumIsRawBSONInIDOrder(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.Client().Database(srv.DB("shop"))
	docs := []bson.D{
		{{Key: "_id", Value: int32(1)}, {Key: "b", Value: "x"}, {Key: "a", Value: 1.5}},
		{{Key: "_id", Value: int32(2)}, {Key: "n", Value: bson.D{{Key: "z", Value: int64(7)}}}},
		{{Key: "_id", Value: int32(10)}},
	}
	for _, i := range []int{2, 0, 1} { // not in _id order
		_, err := db.Collection("orders").InsertOne(ctx, docs[i])
		must(t, err)
	}
	_, err := db.Collection("empty").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	_, err = db.Collection("empty").DeleteOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)
	if err := db.CreateView(ctx, "v", "orders", mongo.Pipeline{}); err != nil {
		t.Logf("no view on this server: %v", err) // the view is only there to be left out
	}
	_, err = srv.Client().Database(srv.DB("other")).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	must(t, err)

	h := sha256.New()
	var size int64
	for _, d := range docs {
		b := raw(t, d)
		h.Write(b)
		size += int64(len(b))
	}
	want := hex.EncodeToString(h.Sum(nil))
	shop := srv.DB("shop")
	sums, err := checksum.Reader{Client: srv.Client()}.Deployment(ctx, func(db, _ string) bool { return db == shop })
	must(t, err)
	if len(sums) != 2 || sums[0].Namespace != shop+".empty" || sums[1].Namespace != shop+".orders" {
		t.Fatalf("sums %+v: want %s.empty and %s.orders only", sums, shop, shop)
	}
	if got := sums[1]; got.Count != 3 || got.Bytes != size || got.SHA256 != want {
		t.Errorf("orders: %+v; want 3 documents, %d bytes, %s", got, size, want)
	}
	if got := sums[0]; got.Count != 0 || got.SHA256 != hex.EncodeToString(sha256.New().Sum(nil)) {
		t.Errorf("empty: %+v; want the SHA-256 of nothing", got)
	}
}

// Compare names the collection that differs, and FirstDifference the
// first document, with its _id and both versions.
func TestDifferenceNamesTheDocument(t *testing.T) {
	a, b := testserver.Start(t), testserver.Start(t)
	ctx := context.Background()
	ns := a.DB("shop") + ".orders"
	for _, srv := range []*testserver.Server{a, b} {
		coll := srv.Client().Database(a.DB("shop")).Collection("orders")
		for i := 1; i <= 5; i++ {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "qty", Value: i}})
			must(t, err)
		}
	}
	ra, rb := checksum.Reader{Client: a.Client()}, checksum.Reader{Client: b.Client()}
	sa, err := ra.Namespaces(ctx, []string{ns})
	must(t, err)
	sb, err := rb.Namespaces(ctx, []string{ns})
	must(t, err)
	if d := checksum.Compare(sa, sb); len(d) != 0 {
		t.Fatalf("same documents differ: %v", d)
	}
	if _, ok, err := checksum.FirstDifference(ctx, ra, rb, ns); ok || err != nil {
		t.Fatalf("FirstDifference of equal collections: %v %v", ok, err)
	}
	_, err = b.Client().Database(a.DB("shop")).Collection("orders").UpdateOne(ctx, bson.D{{Key: "_id", Value: 3}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: 30}}}})
	must(t, err)
	sb, err = rb.Namespaces(ctx, []string{ns})
	must(t, err)
	diffs := checksum.Compare(sa, sb)
	if len(diffs) != 1 || diffs[0].Namespace != ns || diffs[0].Want.Count != 5 || diffs[0].Got.Count != 5 {
		t.Fatalf("Compare after one update: %+v", diffs)
	}
	d, ok, err := checksum.FirstDifference(ctx, ra, rb, ns)
	must(t, err)
	if !ok || d.ID != `{"$numberInt":"3"}` || !strings.Contains(d.Want, `"qty": {"$numberInt":"3"}`) && !strings.Contains(d.Want, `"qty": 3`) ||
		!strings.Contains(d.Got, "30") {
		t.Fatalf("FirstDifference = %+v; want _id 3 with qty 3 and 30", d)
	}
	// A document one side lacks.
	_, err = b.Client().Database(a.DB("shop")).Collection("orders").DeleteOne(ctx, bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	d, ok, err = checksum.FirstDifference(ctx, ra, rb, ns)
	must(t, err)
	if !ok || d.ID != `{"$numberInt":"2"}` || d.Want == "" {
		t.Fatalf("FirstDifference after a delete = %+v; want _id 2, absent on the checked side", d)
	}
}

// --at needs snapshot reads. FerretDB takes readConcern snapshot with
// atClusterTime and answers the current data (see source.Capabilities),
// so it is refused; a real replica set reads the past.
func TestAtPastClusterTime(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	defer src.Close(context.WithoutCancel(ctx))
	coll := srv.Client().Database(srv.DB("shop")).Collection("orders")
	_, err = coll.InsertOne(ctx, bson.D{{Key: "_id", Value: 1}, {Key: "qty", Value: 1}})
	must(t, err)
	point, err := oracle.LastOplogTS(ctx, srv.Client())
	must(t, err)
	ns := srv.DB("shop") + ".orders"
	then, err := checksum.Reader{Client: srv.Client()}.Namespaces(ctx, []string{ns})
	must(t, err)

	rd, err := checksum.At(src, point)
	if !src.Caps.SnapshotReads {
		if !errors.Is(err, checksum.ErrNoSnapshotReads) || !strings.Contains(err.Error(), string(src.Flavor)) {
			t.Fatalf("At on %s: %v; want ErrNoSnapshotReads naming the server", src.Flavor, err)
		}
		return
	}
	must(t, err)
	_, err = coll.UpdateOne(ctx, bson.D{{Key: "_id", Value: 1}}, bson.D{{Key: "$set", Value: bson.D{{Key: "qty", Value: 2}}}})
	must(t, err)
	past, err := rd.Namespaces(ctx, []string{ns})
	must(t, err)
	now, err := checksum.Reader{Client: srv.Client()}.Namespaces(ctx, []string{ns})
	must(t, err)
	if len(checksum.Compare(then, past)) != 0 || len(checksum.Compare(then, now)) != 1 {
		t.Fatalf("at %s: %+v, then %+v, now %+v: want the past equal to then and now different", point, past, then, now)
	}
}
