package restore_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A restore replays with --parallel 4 lanes an oplog range of many writes
// to the same few documents, interleaved across three collections of two
// databases (updates, deletes, re-inserts of the same _ids), cut by a
// create and a plain applyOps: the target must hold exactly what a replay
// in oplog order leaves (replay.Applier into a replay.Memory, one entry
// after the other). A lane that took a document's entries out of order
// leaves an older version, or a deleted document, behind.
func TestParallelReplayKeepsEachDocumentsOrder(t *testing.T) {
	ctx := context.Background()
	srv := testserver.Start(t)
	db1, db2 := srv.DB("pr1"), srv.DB("pr2")
	nss := []string{db1 + ".a", db1 + ".b", db2 + ".a"}
	ids := []any{int32(0), int32(1), int32(2), "s"}
	var colls []rt.Collection
	exists := map[string]bool{}
	key := func(ns string, id any) string { return fmt.Sprintf("%s/%v", ns, id) }
	for _, ns := range nss {
		c := rt.Collection{DB: ns[:len(ns)-2], Name: ns[len(ns)-1:]}
		for _, id := range ids {
			c.Docs = append(c.Docs, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int32(-1)}, {Key: "h", Value: "snapshot"}})
			exists[key(ns, id)] = true
		}
		colls = append(colls, c)
	}
	rng := rand.New(rand.NewPCG(16, 3))
	var entries []bson.D
	for i := range 240 {
		switch i {
		case 80:
			entries = append(entries, rt.Create(db2, "later"))
			continue
		case 160:
			// A plain applyOps (no session): its two updates apply at its place.
			entries = append(entries, bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: "admin.$cmd"}, {Key: "o", Value: bson.D{{Key: "applyOps", Value: bson.A{
				rt.Update(nss[0], "s", setN(int32(i))), rt.Update(nss[2], "s", setN(int32(i))),
			}}}}})
			exists[key(nss[0], "s")], exists[key(nss[2], "s")] = true, true
			continue
		}
		ns, id := nss[rng.IntN(len(nss))], ids[rng.IntN(len(ids))]
		switch {
		case !exists[key(ns, id)]:
			entries = append(entries, rt.Insert(ns, bson.D{{Key: "_id", Value: id}, {Key: "n", Value: int32(i)}, {Key: "h", Value: "again"}}))
			exists[key(ns, id)] = true
		case rng.IntN(4) == 0 && !(id == "s" && (ns == nss[0] || ns == nss[2])):
			entries = append(entries, rt.Delete(ns, id))
			exists[key(ns, id)] = false
		default:
			entries = append(entries, rt.Update(ns, id, setN(int32(i))))
		}
	}
	r := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: colls, Entries: entries})

	want := replayInOrder(t, colls, entries)
	p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Parallel: 4})
	rep, err := p.Execute(ctx, use(t, srv.Client()), restore.Options{Log: testLogger(t)})
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	if rep.Entries < int64(len(entries)) {
		t.Fatalf("replayed %d entries, want %d", rep.Entries, len(entries))
	}
	for _, ns := range nss {
		got := serverDocs(t, srv, ns)
		if got != want[ns] {
			t.Errorf("%s after the parallel replay:\n%s\nwant (oplog order):\n%s", ns, got, want[ns])
		}
	}
}

func setN(n int32) bson.D {
	return bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: n}}}}}}
}

// replayInOrder is the reference: the snapshot's documents and then every
// entry, one at a time, into a replay.Memory; each namespace's documents
// as serverDocs prints them.
func replayInOrder(t *testing.T, colls []rt.Collection, entries []bson.D) map[string]string {
	t.Helper()
	m := replay.NewMemory()
	for _, c := range colls {
		docs := make([]bson.Raw, len(c.Docs))
		for i, d := range c.Docs {
			docs[i] = marshalD(t, d)
		}
		must(t, m.Load(c.DB+"."+c.Name, docs))
	}
	a := &replay.Applier{Memory: m}
	for _, e := range entries {
		if _, err := a.Apply(context.Background(), []bson.Raw{marshalD(t, e)}); err != nil {
			t.Fatalf("reference replay: %v", err)
		}
	}
	out := map[string]string{}
	for _, ns := range m.Namespaces() {
		out[ns] = sortedDocs(m.Documents(ns))
	}
	return out
}

func serverDocs(t *testing.T, srv *testserver.Server, ns string) string {
	t.Helper()
	db, coll := ns[:len(ns)-2], ns[len(ns)-1:]
	cur, err := srv.Client().Database(db).Collection(coll).Find(context.Background(), bson.D{}, options.Find())
	must(t, err)
	var docs []bson.Raw
	for cur.Next(context.Background()) {
		docs = append(docs, append(bson.Raw(nil), cur.Current...))
	}
	must(t, cur.Err())
	return sortedDocs(docs)
}

func sortedDocs(docs []bson.Raw) string {
	sort.Slice(docs, func(i, j int) bool { return bytes.Compare(docs[i], docs[j]) < 0 })
	var b bytes.Buffer
	for _, d := range docs {
		fmt.Fprintf(&b, "%s\n", d)
	}
	return b.String()
}

func marshalD(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}
