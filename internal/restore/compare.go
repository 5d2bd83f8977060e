package restore

import (
	"fmt"
	"math"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// compareOptions says how a target collection's options (listCollections)
// differ from the backup's (nil: none). Every option counts, both ways: one
// the target has and the backup lacks (a capped size, a validator, a
// collation...) changes what the restored collection keeps; one it lacks
// would be lost. Numbers compare by value whatever their BSON type;
// collations ignore their ICU version, which each server picks.
func compareOptions(backup, target bson.Raw) []string {
	var out []string
	if d := compareCapped(backup, target); d != "" {
		out = append(out, d)
	}
	for _, key := range unionKeys(target, backup) {
		switch key {
		case "capped", "size", "max":
			continue
		}
		bv, tv := backup.Lookup(key), target.Lookup(key)
		ignore := map[string]bool{}
		if key == "collation" {
			ignore["version"] = true
		}
		switch {
		case bv.Type == 0:
			out = append(out, fmt.Sprintf("has %s %s, the backup's has none", key, show(tv)))
		case tv.Type == 0:
			out = append(out, fmt.Sprintf("has no %s, the backup's has %s", key, show(bv)))
		case !equalValue(bv, tv, ignore):
			out = append(out, fmt.Sprintf("has %s %s, the backup's has %s", key, show(tv), show(bv)))
		}
	}
	return out
}

// compareCapped describes a difference in cappedness, size or max ("" if
// none). A capped size compares rounded up to 256 bytes, as MongoDB stores it.
func compareCapped(backup, target bson.Raw) string {
	bc, tc := truthy(backup.Lookup("capped")), truthy(target.Lookup("capped"))
	switch {
	case !bc && !tc:
		return ""
	case tc && !bc:
		return "is " + cappedText(target) + ", the backup's is not capped"
	case bc && !tc:
		return "is not capped, the backup's is " + cappedText(backup)
	}
	bs, ts := number(backup.Lookup("size")), number(target.Lookup("size"))
	if math.Ceil(bs/256) == math.Ceil(ts/256) && number(backup.Lookup("max")) == number(target.Lookup("max")) {
		return ""
	}
	return "is " + cappedText(target) + ", the backup's is " + cappedText(backup)
}

func cappedText(opts bson.Raw) string {
	s := fmt.Sprintf("capped (size %g", number(opts.Lookup("size")))
	if m := number(opts.Lookup("max")); m > 0 {
		s += fmt.Sprintf(", max %g", m)
	}
	return s + ")"
}

// indexIgnored are index fields each server picks for itself.
var indexIgnored = map[string]bool{"v": true, "ns": true, "background": true,
	"textIndexVersion": true, "2dsphereIndexVersion": true}

// compareIndexes says which target indexes (listIndexes) the backup lacks,
// or has under the same name built otherwise. An index the backup has and
// the target lacks is fine: the restore builds it. Any extra index means
// the target is not what the backup was; a unique one would refuse the
// backup's documents halfway through the load.
func compareIndexes(backup, target []bson.Raw) []string {
	byName := map[string]bson.Raw{}
	for _, b := range backup {
		name, _ := b.Lookup("name").StringValueOK()
		byName[name] = b
	}
	var out []string
	for _, t := range target {
		name, _ := t.Lookup("name").StringValueOK()
		b, ok := byName[name]
		switch {
		case !ok && name == "_id_":
			// Every collection has it; a backup from an old manifest may not list it.
		case !ok:
			out = append(out, fmt.Sprintf("has %s %s %s that the backup lacks", indexKind(t), name, show(t.Lookup("key"))))
		case !equalValue(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: b},
			bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: t}, indexIgnored):
			out = append(out, fmt.Sprintf("has %s %s, the backup's %s is %s", name, indexText(t), name, indexText(b)))
		}
	}
	return out
}

func indexKind(spec bson.Raw) string {
	if truthy(spec.Lookup("unique")) {
		return "unique index"
	}
	return "index"
}

// indexText shows a spec without the fields each server picks.
func indexText(spec bson.Raw) string {
	return show(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: without(spec, "v", "ns", "name", "background")})
}

// equalValue compares two BSON values: numbers by value whatever their
// type, documents field by field in order (skipping ignored top-level
// fields, and in either order when ignore is set: index specs and options
// are sets of fields), arrays element by element, anything else by bytes.
func equalValue(a, b bson.RawValue, ignore map[string]bool) bool {
	if an, aok := numeric(a); aok {
		bn, bok := numeric(b)
		return bok && an == bn
	}
	if a.Type != b.Type {
		return false
	}
	switch a.Type {
	case bson.TypeEmbeddedDocument:
		return equalDocs(a.Document(), b.Document(), ignore)
	case bson.TypeArray:
		av, _ := a.Array().Values()
		bv, _ := b.Array().Values()
		if len(av) != len(bv) {
			return false
		}
		for i := range av {
			if !equalValue(av[i], bv[i], nil) {
				return false
			}
		}
		return true
	}
	return string(a.Value) == string(b.Value)
}

func equalDocs(a, b bson.Raw, ignore map[string]bool) bool {
	keep := func(d bson.Raw) []bson.RawElement {
		var out []bson.RawElement
		for _, e := range mustElements(d) {
			if !ignore[e.Key()] {
				out = append(out, e)
			}
		}
		return out
	}
	ae, be := keep(a), keep(b)
	if len(ae) != len(be) {
		return false
	}
	for i, e := range ae {
		other := be[i]
		if len(ignore) > 0 { // a set of fields: match by name
			other = bson.RawElement(nil)
			for _, f := range be {
				if f.Key() == e.Key() {
					other = f
				}
			}
			if other == nil {
				return false
			}
		} else if other.Key() != e.Key() {
			return false
		}
		if !equalValue(e.Value(), other.Value(), nil) {
			return false
		}
	}
	return true
}

func numeric(v bson.RawValue) (float64, bool) {
	switch v.Type {
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		n := number(v)
		return n, true
	}
	return 0, false
}

func number(v bson.RawValue) float64 {
	if n, ok := v.AsInt64OK(); ok {
		return float64(n)
	}
	f, _ := v.DoubleOK()
	return f
}

func truthy(v bson.RawValue) bool {
	if b, ok := v.BooleanOK(); ok {
		return b
	}
	n, ok := numeric(v)
	return ok && n != 0
}

// unionKeys lists the top-level field names of a, then those only in b.
func unionKeys(a, b bson.Raw) []string {
	var out []string
	seen := map[string]bool{}
	for _, d := range []bson.Raw{a, b} {
		for _, e := range mustElements(d) {
			if !seen[e.Key()] {
				seen[e.Key()] = true
				out = append(out, e.Key())
			}
		}
	}
	return out
}

// show is a value as relaxed extended JSON, cut to 120 characters.
func show(v bson.RawValue) string {
	wrapped, err := bson.Marshal(bson.D{{Key: "v", Value: v}})
	if err != nil {
		return v.String()
	}
	js, err := bson.MarshalExtJSON(bson.Raw(wrapped), false, false)
	if err != nil {
		return v.String()
	}
	s := strings.TrimSuffix(strings.TrimPrefix(string(js), `{"v":`), "}")
	if r := []rune(s); len(r) > 120 {
		s = string(r[:119]) + "…"
	}
	return s
}
