package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// state is what a replay left, in source names: read from a server (under
// the test's database prefix) or from a replay.Memory. Both paths compare it
// with a vector's after through compareState.
type state interface {
	namespaces(ctx context.Context) ([]string, error)
	documents(ctx context.Context, ns string) ([]bson.Raw, error)
	indexes(ctx context.Context, ns string) ([]bson.Raw, error)
	options(ctx context.Context, ns string) (bson.Raw, error)
}

// compareState compares a replay's result with the vector's after,
// after_indexes and after_options (see shared/oplog/vectors/README.md).
func compareState(ctx context.Context, st state, v vector) []string {
	problems := compareNamespaces(ctx, st, v.After)
	problems = append(problems, compareDocuments(ctx, st, v.After)...)
	problems = append(problems, compareIndexes(ctx, st, v.AfterIndexes)...)
	return append(problems, compareOptions(ctx, st, v.AfterOptions)...)
}

func compareNamespaces(ctx context.Context, st state, after bson.Raw) []string {
	got, err := st.namespaces(ctx)
	if err != nil {
		return []string{fmt.Sprintf("list namespaces: %v", err)}
	}
	var want []string
	els, _ := after.Elements()
	for _, e := range els {
		want = append(want, e.Key())
	}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return []string{fmt.Sprintf("namespaces: got %v, want %v", got, want)}
	}
	return nil
}

// compareDocuments compares each namespace's documents byte for byte, as a
// set (duplicates counted).
func compareDocuments(ctx context.Context, st state, after bson.Raw) []string {
	var problems []string
	els, _ := after.Elements()
	for _, e := range els {
		docs, err := st.documents(ctx, e.Key())
		if err != nil {
			problems = append(problems, fmt.Sprintf("read %s: %v", e.Key(), err))
			continue
		}
		count := map[string]int{}
		for _, d := range docs {
			count[string(d)]++
		}
		wantDocs, _ := e.Value().Array().Values()
		for _, w := range wantDocs {
			doc := w.Document()
			if count[string(doc)] == 0 {
				problems = append(problems, fmt.Sprintf("%s: missing %s", e.Key(), doc))
				continue
			}
			count[string(doc)]--
		}
		for doc, n := range count {
			for ; n > 0; n-- {
				problems = append(problems, fmt.Sprintf("%s: unexpected %s", e.Key(), bson.Raw(doc)))
			}
		}
	}
	return problems
}

// compareIndexes checks after_indexes: the same index names, each with the
// same key (ordered, numbers by value) and the listed options by value
// (v and ns ignored).
func compareIndexes(ctx context.Context, st state, want bson.Raw) []string {
	if want == nil {
		return nil
	}
	var problems []string
	els, _ := want.Elements()
	for _, e := range els {
		list, err := st.indexes(ctx, e.Key())
		if err != nil {
			problems = append(problems, fmt.Sprintf("list indexes of %s: %v", e.Key(), err))
			continue
		}
		got := map[string]bson.Raw{}
		for _, spec := range list {
			name, _ := spec.Lookup("name").StringValueOK()
			got[name] = spec
		}
		specs, _ := e.Value().Array().Values()
		for _, s := range specs {
			spec := s.Document()
			name := spec.Lookup("name").StringValue()
			act, ok := got[name]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: index %s missing", e.Key(), name))
				continue
			}
			delete(got, name)
			fields, _ := spec.Elements()
			for _, f := range fields {
				switch f.Key() {
				case "v", "ns", "name":
					continue
				}
				av, err := act.LookupErr(f.Key())
				if err != nil || !equalValue(f.Value(), av, false) {
					problems = append(problems, fmt.Sprintf("%s: index %s: %s is %v, want %v", e.Key(), name, f.Key(), av, f.Value()))
				}
			}
		}
		for name := range got {
			problems = append(problems, fmt.Sprintf("%s: unexpected index %s", e.Key(), name))
		}
	}
	return problems
}

// compareOptions checks after_options: every listed option present with an
// equal value (numbers by value, documents as subsets).
func compareOptions(ctx context.Context, st state, want bson.Raw) []string {
	if want == nil {
		return nil
	}
	var problems []string
	els, _ := want.Elements()
	for _, e := range els {
		opts, err := st.options(ctx, e.Key())
		if err != nil {
			problems = append(problems, fmt.Sprintf("options of %s: %v", e.Key(), err))
			continue
		}
		fields, _ := e.Value().Document().Elements()
		for _, f := range fields {
			av, err := opts.LookupErr(f.Key())
			if err != nil || !equalValue(f.Value(), av, true) {
				problems = append(problems, fmt.Sprintf("%s: option %s is %v, want %v (options %s)", e.Key(), f.Key(), av, f.Value(), opts))
			}
		}
	}
	return problems
}

// equalValue compares numbers by value, documents in order (or as subsets
// of got when subset is set), arrays element by element, the rest by bytes.
func equalValue(want, got bson.RawValue, subset bool) bool {
	wf, wnum := want.AsFloat64OK()
	gf, gnum := got.AsFloat64OK()
	if wnum && gnum {
		return wf == gf
	}
	if want.Type != got.Type {
		return false
	}
	switch want.Type {
	case bson.TypeEmbeddedDocument:
		we, _ := want.Document().Elements()
		ge, _ := got.Document().Elements()
		if !subset && len(we) != len(ge) {
			return false
		}
		for i, w := range we {
			var g bson.RawValue
			if subset {
				v, err := got.Document().LookupErr(w.Key())
				if err != nil {
					return false
				}
				g = v
			} else {
				if ge[i].Key() != w.Key() {
					return false
				}
				g = ge[i].Value()
			}
			if !equalValue(w.Value(), g, subset) {
				return false
			}
		}
		return true
	case bson.TypeArray:
		wv, _ := want.Array().Values()
		gv, _ := got.Array().Values()
		if len(wv) != len(gv) {
			return false
		}
		for i := range wv {
			if !equalValue(wv[i], gv[i], subset) {
				return false
			}
		}
		return true
	}
	return bytes.Equal(want.Value, got.Value)
}

// serverState reads a replay's result from a server: the source database
// db is the target database prefix+db.
type serverState struct {
	c      *mongo.Client
	prefix string
}

// namespaces lists the collections (not views) under prefix, as source names.
func (s serverState) namespaces(ctx context.Context) ([]string, error) {
	dbs, err := s.c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, db := range dbs {
		if !strings.HasPrefix(db, s.prefix) {
			continue
		}
		specs, err := s.c.Database(db).ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		for _, sp := range specs {
			if sp.Type == "" || sp.Type == "collection" {
				out = append(out, strings.TrimPrefix(db, s.prefix)+"."+sp.Name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func (s serverState) documents(ctx context.Context, ns string) ([]bson.Raw, error) {
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := s.c.Database(s.prefix+db).Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		doc := append(bson.Raw(nil), cur.Current...)
		if coll == "system.views" {
			doc = unprefixViewID(doc, s.prefix)
		}
		out = append(out, doc)
	}
	return out, cur.Err()
}

func (s serverState) indexes(ctx context.Context, ns string) ([]bson.Raw, error) {
	db, coll, _ := strings.Cut(ns, ".")
	cur, err := s.c.Database(s.prefix + db).Collection(coll).Indexes().List(ctx)
	if err != nil {
		return nil, err
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	return out, cur.Err()
}

func (s serverState) options(ctx context.Context, ns string) (bson.Raw, error) {
	db, coll, _ := strings.Cut(ns, ".")
	specs, err := s.c.Database(s.prefix+db).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: coll}})
	if err != nil {
		return nil, err
	}
	if len(specs) != 1 {
		return nil, fmt.Errorf("%d collections named %s", len(specs), ns)
	}
	return specs[0].Options, nil
}

// unprefixViewID maps a system.views document's _id ("<prefix>db.view")
// back to its source name, the way the test's Map maps database names; the
// rest of the document is kept byte for byte.
func unprefixViewID(doc bson.Raw, prefix string) bson.Raw {
	els, err := doc.Elements()
	if err != nil {
		return doc
	}
	idx, out := bsoncore.AppendDocumentStart(nil)
	for _, e := range els {
		if s, ok := e.Value().StringValueOK(); ok && e.Key() == "_id" {
			out = bsoncore.AppendStringElement(out, "_id", strings.TrimPrefix(s, prefix))
			continue
		}
		out = append(out, e...)
	}
	out, _ = bsoncore.AppendDocumentEnd(out, idx)
	return out
}

// memState reads a replay's result from a replay.Memory (no prefix).
type memState struct{ m *replay.Memory }

func (s memState) namespaces(context.Context) ([]string, error) { return s.m.Namespaces(), nil }

func (s memState) documents(_ context.Context, ns string) ([]bson.Raw, error) {
	return s.m.Documents(ns), nil
}

func (s memState) indexes(_ context.Context, ns string) ([]bson.Raw, error) {
	if _, ok := s.m.Options(ns); !ok {
		return nil, fmt.Errorf("no collection %s", ns)
	}
	return s.m.Indexes(ns), nil
}

func (s memState) options(_ context.Context, ns string) (bson.Raw, error) {
	opts, ok := s.m.Options(ns)
	if !ok {
		return nil, fmt.Errorf("no collection %s", ns)
	}
	return opts, nil
}
