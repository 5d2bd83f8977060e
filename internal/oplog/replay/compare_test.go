package replay_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// compareIndexes checks after_indexes: the same index names, each with the
// same key (ordered, numbers by value) and the listed options by value
// (v and ns ignored).
func compareIndexes(ctx context.Context, c *mongo.Client, prefix string, want bson.Raw) []string {
	if want == nil {
		return nil
	}
	var problems []string
	els, _ := want.Elements()
	for _, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		cur, err := c.Database(prefix + db).Collection(coll).Indexes().List(ctx)
		if err != nil {
			problems = append(problems, fmt.Sprintf("list indexes of %s: %v", e.Key(), err))
			continue
		}
		got := map[string]bson.Raw{}
		for cur.Next(ctx) {
			name, _ := cur.Current.Lookup("name").StringValueOK()
			got[name] = append(bson.Raw(nil), cur.Current...)
		}
		cur.Close(ctx)
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
func compareOptions(ctx context.Context, c *mongo.Client, prefix string, want bson.Raw) []string {
	if want == nil {
		return nil
	}
	var problems []string
	els, _ := want.Elements()
	for _, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		specs, err := c.Database(prefix+db).ListCollectionSpecifications(ctx, bson.D{{Key: "name", Value: coll}})
		if err != nil || len(specs) != 1 {
			problems = append(problems, fmt.Sprintf("options of %s: %d specs, %v", e.Key(), len(specs), err))
			continue
		}
		opts := specs[0].Options
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
