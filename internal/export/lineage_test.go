package export_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// A document the range writes under its collection's new name is held back
// from the snapshot under the old one: renamed across databases, then
// updated, deleted and inserted into; the old name is created again by an
// insert. Each collection spans several chunks.
func TestRenamedCollectionKeepsItsDocuments(t *testing.T) {
	var orders []bson.D
	for i := range 20 {
		orders = append(orders, bson.D{{Key: "_id", Value: int32(i)}, {Key: "n", Value: int64(i * 10)}})
	}
	r := rt.New(t, rt.Spec{ChunkDocs: 6, Collections: []rt.Collection{{DB: "app", Name: "orders", Docs: orders,
		Indexes: []bson.D{{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "n", Value: int32(1)}}}, {Key: "name", Value: "n_1"}}}}},
		Entries: []bson.D{
			{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "renameCollection", Value: "app.orders"}, {Key: "to", Value: "arch.orders"}}}},
			rt.Update("arch.orders", int32(3), bson.D{{Key: "_id", Value: int32(3)}, {Key: "n", Value: "replaced"}}),
			rt.Delete("arch.orders", int32(4)),
			rt.Insert("arch.orders", bson.D{{Key: "_id", Value: int32(100)}}),
			rt.Insert("app.orders", bson.D{{Key: "_id", Value: int32(7)}, {Key: "new", Value: true}}),
		}})
	rep, d := exportTo(t, r.Repository, export.Request{To: restore.When{Latest: true}, Format: export.Archive})
	want := map[string][]bson.Raw{"app.orders": {marshal(t, bson.D{{Key: "_id", Value: int32(7)}, {Key: "new", Value: true}})}}
	for _, doc := range orders {
		switch doc[0].Value {
		case int32(3):
			doc = bson.D{{Key: "_id", Value: int32(3)}, {Key: "n", Value: "replaced"}}
		case int32(4):
			continue
		}
		want["arch.orders"] = append(want["arch.orders"], marshal(t, doc))
	}
	want["arch.orders"] = append(want["arch.orders"], marshal(t, bson.D{{Key: "_id", Value: int32(100)}}))
	if len(d.meta) != 2 {
		t.Fatalf("namespaces %v, want app.orders and arch.orders", d.meta)
	}
	for ns, docs := range want {
		g, w := byID(t, d.docs[ns]), byID(t, docs)
		if len(g) != len(w) {
			t.Errorf("%s holds %d documents, want %d", ns, len(g), len(w))
		}
		for id, doc := range w {
			if !bytesEqual(g[id], doc) {
				t.Errorf("%s: %s, want %s", ns, g[id], doc)
			}
		}
	}
	if ix := d.meta["arch.orders"].Indexes; len(ix) != 2 || ix[1].Lookup("name").StringValue() != "n_1" {
		t.Errorf("arch.orders indexes %v, want _id_ and n_1 carried by the rename", ix)
	}
	// Held in memory at the end: 3, 100 and the snapshot's 7 under the new
	// name (a lineage is one: 7 is written under the old name), and the new
	// 7 under the old one; the deleted 4 is gone.
	if rep.Held != 4 {
		t.Errorf("held %d documents in memory, want 4", rep.Held)
	}
}

func marshal(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}
