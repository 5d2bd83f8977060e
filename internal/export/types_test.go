package export_test

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// Every BSON type, the deprecated ones and the forms the FerretDB test
// server refuses included (decimal128, MinKey/MaxKey, JavaScript with and
// without scope, symbol, undefined, DBPointer, NaN, ±Inf, -0.0, nested
// arrays, dotted and $-prefixed field names), written from the snapshot and
// from the oplog, round-trips through jsonl byte for byte.
func TestJSONLRoundTripsEveryBSONType(t *testing.T) {
	oid := bson.ObjectID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	dec, err := bson.ParseDecimal128("-1234.5678E-30")
	must(t, err)
	all := bson.D{
		{Key: "_id", Value: oid},
		{Key: "double", Value: bson.A{1.5, math.Copysign(0, -1), math.NaN(), math.Inf(1), math.Inf(-1), math.SmallestNonzeroFloat64, math.MaxFloat64}},
		{Key: "string", Value: "naïve \u0000 \t \u2028 😀 \"quoted\" </script>"},
		{Key: "doc", Value: bson.D{{Key: "a.b", Value: 1}, {Key: "$price", Value: 2}, {Key: "", Value: "empty key"}}},
		{Key: "nested", Value: bson.A{bson.A{int32(1), bson.A{}}, bson.D{}}},
		{Key: "binary", Value: bson.A{bson.Binary{Subtype: 0, Data: []byte{0, 1, 255}}, bson.Binary{Subtype: 2, Data: []byte{4, 0, 0, 0, 1, 2, 3, 4}},
			bson.Binary{Subtype: 4, Data: make([]byte, 16)}, bson.Binary{Subtype: 0x80, Data: nil}}},
		{Key: "undefined", Value: bson.Undefined{}},
		{Key: "bool", Value: bson.A{true, false}},
		{Key: "date", Value: bson.A{bson.DateTime(-62135596800000), bson.DateTime(time.Date(2026, 11, 29, 1, 2, 3, 4e6, time.UTC).UnixMilli()), bson.DateTime(math.MaxInt64)}},
		{Key: "null", Value: nil},
		{Key: "regex", Value: bson.Regex{Pattern: `^a\/b"c$`, Options: "imsux"}},
		{Key: "dbpointer", Value: bson.DBPointer{DB: "db.coll", Pointer: oid}},
		{Key: "js", Value: bson.JavaScript("function () { return 1 }")},
		{Key: "symbol", Value: bson.Symbol("sym")},
		{Key: "jsScope", Value: bson.CodeWithScope{Code: "x", Scope: bson.D{{Key: "x", Value: int64(1)}}}},
		{Key: "int32", Value: bson.A{int32(math.MinInt32), int32(math.MaxInt32)}},
		{Key: "timestamp", Value: bson.A{bson.Timestamp{}, bson.Timestamp{T: math.MaxUint32, I: math.MaxUint32}}},
		{Key: "int64", Value: bson.A{int64(math.MinInt64), int64(math.MaxInt64)}},
		{Key: "decimal", Value: dec},
		{Key: "minmax", Value: bson.A{bson.MinKey{}, bson.MaxKey{}}},
	}
	inserted := append(bson.D{{Key: "_id", Value: "from the oplog"}}, all[1:]...)
	r := rt.New(t, rt.Spec{Collections: []rt.Collection{{DB: "t", Name: "all", Docs: []bson.D{all}}},
		Entries: []bson.D{rt.Insert("t.all", inserted)}})
	_, d := exportTo(t, r.Repository, export.Request{To: restore.When{Latest: true}, Format: export.JSONL})
	got := byID(t, d.docs["t.all"])
	want := byID(t, []bson.Raw{marshal(t, all), marshal(t, inserted)})
	if len(got) != 2 {
		t.Fatalf("%d documents, want 2", len(got))
	}
	types := map[bson.Type]bool{}
	for id, doc := range want {
		if !bytesEqual(got[id], doc) {
			t.Errorf("decoded\n%s\nwant\n%s", got[id], doc)
		}
		typesOf(doc, types)
	}
	if len(types) != 21 {
		t.Errorf("the documents hold %d BSON types, want all 21", len(types))
	}
}

// A document Extended JSON cannot express (an embedded document whose
// field reads as a type wrapper) fails a jsonl export, naming the document
// and the formats that can hold it, and leaves no output; bson holds it.
func TestJSONLRefusesWhatItCannotExpress(t *testing.T) {
	doc := bson.D{{Key: "_id", Value: int32(7)}, {Key: "x", Value: bson.D{{Key: "$oid", Value: "not an id"}}}}
	r := rt.New(t, rt.Spec{Collections: []rt.Collection{{DB: "t", Name: "odd", Docs: []bson.D{doc}}}})
	out := filepath.Join(t.TempDir(), "out")
	req := export.Request{To: restore.When{Latest: true}, Format: export.JSONL, Out: out}
	p, err := export.Prepare(context.Background(), r.Repository, req)
	must(t, err)
	_, err = p.Write(context.Background(), export.Options{Log: testLogger(t)})
	p.Release()
	if err == nil || !strings.Contains(err.Error(), `t.odd: write the document with _id {"$numberInt":"7"}`) || !strings.Contains(err.Error(), "--format bson or archive") {
		t.Fatalf("jsonl of %v: %v", doc, err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("the failed export left %s", out)
	}
	_, d := exportTo(t, r.Repository, export.Request{To: restore.When{Latest: true}, Format: export.BSON})
	if docs := d.docs["t.odd"]; len(docs) != 1 || !bytesEqual(docs[0], marshal(t, doc)) {
		t.Errorf("bson: %v", docs)
	}
}
