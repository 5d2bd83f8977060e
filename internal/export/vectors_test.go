package export_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

// vector is an oplog replay vector (internal/oplog/replay/testdata/vectors).
type vector struct {
	Name         string     `bson:"name"`
	About        string     `bson:"about"`
	Before       bson.Raw   `bson:"before"`
	Entries      []bson.Raw `bson:"entries"`
	After        bson.Raw   `bson:"after"`
	AfterIndexes bson.Raw   `bson:"after_indexes"`
	AfterOptions bson.Raw   `bson:"after_options"`
}

// TestEveryVector exports, in each format, a repository whose snapshot is
// a vector's before and whose oplog is its entries (the DDL MongoDB logs:
// creates, drops, renames within and across databases through temporary
// collections, convertToCapped, emptycapped, index builds, collMod, views,
// transactions), and checks that the export holds exactly the vector's
// after: the namespaces, every document byte for byte, the indexes and
// options it lists. This is the streaming export (documents the range
// does not write come from the snapshot, under the name the range's DDL
// gave their collection) checked against the answer the replay vectors
// prove on servers.
func TestEveryVector(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "oplog", "replay", "testdata", "vectors", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors (%v)", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		must(t, err)
		var v vector
		must(t, bson.UnmarshalExtJSON(b, true, &v))
		t.Run(v.Name, func(t *testing.T) {
			if strings.HasPrefix(v.About, "SHARDED-CLUSTER") {
				t.Skip("replays a whole sharded cluster, skipping chunk migrations; an export replays one replica set as it logged them")
			}
			r := rt.New(t, vectorSpec(t, v))
			for _, f := range []export.Format{export.Archive, export.BSON, export.JSONL} {
				_, d := exportTo(t, r.Repository, export.Request{To: restore.When{Latest: true}, Format: f})
				checkAfter(t, f, v, d)
			}
		})
	}
}

// vectorSpec is the vector as a repository: before as the snapshot, the
// entries (without their ts, which the repository assigns) as the oplog.
func vectorSpec(t *testing.T, v vector) rt.Spec {
	var s rt.Spec
	els, _ := v.Before.Elements()
	for _, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		c := rt.Collection{DB: db, Name: coll}
		vals, _ := e.Value().Array().Values()
		for _, val := range vals {
			c.Docs = append(c.Docs, toD(t, val.Document()))
		}
		s.Collections = append(s.Collections, c)
	}
	for _, e := range v.Entries {
		var d bson.D
		for _, f := range toD(t, e) {
			if f.Key != "ts" && f.Key != "t" && f.Key != "wall" {
				d = append(d, f)
			}
		}
		s.Entries = append(s.Entries, d)
	}
	return s
}

// toD decodes a document, checking it encodes back to the same bytes.
func toD(t *testing.T, raw bson.Raw) bson.D {
	t.Helper()
	var d bson.D
	must(t, bson.Unmarshal(raw, &d))
	if back, err := bson.Marshal(d); err != nil || !bytesEqual(back, raw) {
		t.Fatalf("%s does not survive decoding (%v)", raw, err)
	}
	return d
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// exportTo exports repository r (Out, when empty, is a new path under
// t.TempDir()) and reads the export back.
func exportTo(t *testing.T, r *repo.Repository, req export.Request) (export.Report, dump) {
	t.Helper()
	ctx := context.Background()
	if req.Out == "" {
		req.Out = filepath.Join(t.TempDir(), "out")
	}
	must(t, req.Validate())
	p, err := export.Prepare(ctx, r, req)
	must(t, err)
	defer p.Release()
	rep, err := p.Write(ctx, export.Options{Log: testLogger(t)})
	must(t, err)
	if req.Format == export.Archive {
		b, err := os.ReadFile(req.Out)
		must(t, err)
		return rep, readArchive(t, b)
	}
	return rep, readDir(t, req.Out, req.Format)
}

// checkAfter compares an export with a vector's after.
func checkAfter(t *testing.T, f export.Format, v vector, d dump) {
	t.Helper()
	want := map[string][]bson.Raw{}
	views := map[string]bson.Raw{}
	els, _ := v.After.Elements()
	for _, e := range els {
		vals, _ := e.Value().Array().Values()
		if strings.HasSuffix(e.Key(), ".system.views") {
			for _, val := range vals {
				views[val.Document().Lookup("_id").StringValue()] = val.Document()
			}
			continue
		}
		want[e.Key()] = []bson.Raw{}
		for _, val := range vals {
			want[e.Key()] = append(want[e.Key()], val.Document())
		}
	}
	var got, wantNS []string
	for ns, m := range d.meta {
		if m.Type == "view" {
			if def := views[ns]; def == nil || !subset(def, m.Options, "_id") || !subset(m.Options, def) {
				t.Errorf("%s: view %s is %s, want %s", f, ns, m.Options, views[ns])
			}
			delete(views, ns)
			continue
		}
		got = append(got, ns)
	}
	for ns := range want {
		wantNS = append(wantNS, ns)
	}
	sort.Strings(got)
	sort.Strings(wantNS)
	if strings.Join(got, ",") != strings.Join(wantNS, ",") || len(views) > 0 {
		t.Fatalf("%s: namespaces %v, want %v (views missing: %v)", f, got, wantNS, views)
	}
	for ns, docs := range want {
		g, w := byID(t, d.docs[ns]), byID(t, docs)
		if len(g) != len(w) {
			t.Errorf("%s: %s holds %d documents, want %d", f, ns, len(g), len(w))
		}
		for id, doc := range w {
			if !bytesEqual(g[id], doc) {
				t.Errorf("%s: %s: document %s is %s", f, ns, doc, g[id])
			}
		}
		checkIndexes(t, f, ns, v.AfterIndexes.Lookup(ns), d.meta[ns].Indexes)
		if o, ok := v.AfterOptions.Lookup(ns).DocumentOK(); ok && !subset(o, d.meta[ns].Options) {
			t.Errorf("%s: %s options %s, want %s among them", f, ns, d.meta[ns].Options, o)
		}
	}
}

// checkIndexes compares index specs by name: the key byte for byte, the
// other listed fields by value (v and ns ignored), as the vectors' README says.
func checkIndexes(t *testing.T, f export.Format, ns string, want bson.RawValue, got []bson.Raw) {
	t.Helper()
	arr, ok := want.ArrayOK()
	if !ok {
		return
	}
	vals, _ := arr.Values()
	if len(vals) != len(got) {
		t.Errorf("%s: %s has indexes %v, want %s", f, ns, got, arr)
		return
	}
	byName := map[string]bson.Raw{}
	for _, g := range got {
		byName[g.Lookup("name").StringValue()] = g
	}
	for _, val := range vals {
		w := val.Document()
		g := byName[w.Lookup("name").StringValue()]
		if g == nil || !subset(w, g, "v", "ns") || !bytesEqual(g.Lookup("key").Value, w.Lookup("key").Value) {
			t.Errorf("%s: %s index %s is %s", f, ns, w, g)
		}
	}
}

// subset: every field of want but those skipped is in got with an equal
// value (documents as subsets, numbers by value).
func subset(want, got bson.Raw, skip ...string) bool {
	els, _ := want.Elements()
	for _, e := range els {
		if slices.Contains(skip, e.Key()) {
			continue
		}
		g := got.Lookup(e.Key())
		if d, ok := e.Value().DocumentOK(); ok {
			gd, ok := g.DocumentOK()
			if !ok || !subset(d, gd) {
				return false
			}
			continue
		}
		wn, wok := e.Value().AsFloat64OK()
		gn, gok := g.AsFloat64OK()
		if !(wok && gok && wn == gn) && !e.Value().Equal(g) {
			return false
		}
	}
	return true
}
