package cluster

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func raws(t *testing.T, ds ...bson.D) []bson.Raw {
	out := make([]bson.Raw, len(ds))
	for i, d := range ds {
		out[i] = raw(t, d)
	}
	return out
}

// key is a chunk bound: {field: value, ...} in key order.
func key(kv ...any) bson.D {
	var d bson.D
	for i := 0; i < len(kv); i += 2 {
		d = append(d, bson.E{Key: kv[i].(string), Value: kv[i+1]})
	}
	return d
}

// A compound ranged key over a dotted path, with chunks in the pre-5.0
// format (keyed by ns): each document goes to the chunk [min, max) its
// key falls in, a missing field counting as null (above MinKey, below
// every number and string), numbers compared by value whatever their
// type, bounds inclusive at min and exclusive at max.
func TestOwnerRangedCompound(t *testing.T) {
	ns := "app.orders"
	o, err := NewOwners(
		raws(t, bson.D{{Key: "_id", Value: "app"}, {Key: "primary", Value: "s0"}}),
		raws(t, bson.D{{Key: "_id", Value: ns}, {Key: "key", Value: key("a", 1, "b.c", 1)}, {Key: "unique", Value: false}}),
		raws(t,
			bson.D{{Key: "_id", Value: ns + "-a_MinKeyb.c_MinKey"}, {Key: "ns", Value: ns}, {Key: "min", Value: key("a", bson.MinKey{}, "b.c", bson.MinKey{})},
				{Key: "max", Value: key("a", 10, "b.c", bson.MinKey{})}, {Key: "shard", Value: "s0"}},
			bson.D{{Key: "_id", Value: ns + "-a_10.0b.c_\"m\""}, {Key: "ns", Value: ns}, {Key: "min", Value: key("a", 10, "b.c", "m")},
				{Key: "max", Value: key("a", bson.MaxKey{}, "b.c", bson.MaxKey{})}, {Key: "shard", Value: "s2"}},
			bson.D{{Key: "_id", Value: ns + "-a_10b.c_MinKey"}, {Key: "ns", Value: ns}, {Key: "min", Value: key("a", 10, "b.c", bson.MinKey{})},
				{Key: "max", Value: key("a", 10, "b.c", "m")}, {Key: "shard", Value: "s1"}},
		))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		doc  bson.D
		want string
	}{
		{key("_id", 1, "a", 5), "s0"},
		{key("_id", 1, "a", 9.999, "b", key("c", "zzz")), "s0"},
		{key("_id", 1), "s0"}, // a missing: null, above MinKey
		{key("_id", 1, "a", nil), "s0"},
		{key("_id", 1, "a", 10, "b", key("c", "a")), "s1"},
		{key("_id", 1, "a", 10), "s1"},                                        // b.c missing: null, below "m"
		{key("_id", 1, "a", 10, "b", 5), "s1"},                                // b not a document: b.c is null
		{key("_id", 1, "a", 10, "b", key("c", 99)), "s1"},                     // numbers sort below strings
		{key("_id", 1, "a", 10.0, "b", key("c", "m")), "s2"},                  // min is inclusive
		{key("_id", 1, "a", int64(10), "b", key("c", "z")), "s2"},             /* int64 10 == int32 10 */
		{key("_id", 1, "a", "x"), "s2"},                                       // strings sort above numbers
		{key("_id", 1, "a", key("k", 1)), "s2"},                               // documents above strings
		{key("_id", 1, "a", bson.MaxKey{}, "b", key("c", bson.MaxKey{})), ""}, // max is exclusive: no chunk
	}
	for _, c := range cases {
		got, err := o.Owner(ns, raw(t, c.doc))
		if err != nil {
			t.Errorf("%v: %v", c.doc, err)
			continue
		}
		if got != c.want {
			t.Errorf("%v: owner %q, want %q", c.doc, got, c.want)
		}
	}
	if _, err := o.Owner(ns, raw(t, key("_id", 1, "a", bson.A{1, 2}))); err == nil || !strings.Contains(err.Error(), "array") {
		t.Errorf("an array in the shard key: got %v, want an error naming the array", err)
	}
}

// Hashed keys with chunks in the 5.0+ format (keyed by the collection's
// uuid): the bounds are ranges of HashedValue. 42 hashes below 0, 1 and
// "abc" above it (hasher_test.cpp's values); a compound key hashes only
// its hashed field.
func TestOwnerHashed(t *testing.T) {
	uuid := bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	uuid2 := bson.Binary{Subtype: 4, Data: []byte("fedcba9876543210")}
	o, err := NewOwners(
		raws(t, bson.D{{Key: "_id", Value: "app"}, {Key: "primary", Value: "s0"}}),
		raws(t,
			bson.D{{Key: "_id", Value: "app.h"}, {Key: "key", Value: key("_id", "hashed")}, {Key: "uuid", Value: uuid}},
			bson.D{{Key: "_id", Value: "app.c"}, {Key: "key", Value: key("region", 1, "user", "hashed")}, {Key: "uuid", Value: uuid2}}),
		raws(t,
			bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "uuid", Value: uuid}, {Key: "min", Value: key("_id", bson.MinKey{})},
				{Key: "max", Value: key("_id", int64(0))}, {Key: "shard", Value: "s0"}},
			bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "uuid", Value: uuid}, {Key: "min", Value: key("_id", int64(0))},
				{Key: "max", Value: key("_id", bson.MaxKey{})}, {Key: "shard", Value: "s1"}},
			bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "uuid", Value: uuid2}, {Key: "min", Value: key("region", bson.MinKey{}, "user", bson.MinKey{})},
				{Key: "max", Value: key("region", "eu", "user", int64(0))}, {Key: "shard", Value: "s0"}},
			bson.D{{Key: "_id", Value: bson.NewObjectID()}, {Key: "uuid", Value: uuid2}, {Key: "min", Value: key("region", "eu", "user", int64(0))},
				{Key: "max", Value: key("region", bson.MaxKey{}, "user", bson.MaxKey{})}, {Key: "shard", Value: "s1"}},
		))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ns   string
		doc  bson.D
		want string
	}{
		{"app.h", key("_id", 42), "s0"},
		{"app.h", key("_id", 42.9), "s0"},
		{"app.h", key("_id", 1), "s1"},
		{"app.h", key("_id", "abc"), "s1"},
		{"app.c", key("_id", 7, "region", "eu", "user", 42), "s0"},
		{"app.c", key("_id", 7, "region", "eu", "user", 1), "s1"},
		{"app.c", key("_id", 7, "region", "us", "user", 42), "s1"},
		{"app.c", key("_id", 7, "region", "eu"), "s1"}, // user missing: hash of null, 2338878944348059895 > 0
	}
	for _, c := range cases {
		got, err := o.Owner(c.ns, raw(t, c.doc))
		if err != nil {
			t.Errorf("%s %v: %v", c.ns, c.doc, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s %v: owner %q, want %q", c.ns, c.doc, got, c.want)
		}
	}
	if _, err := o.Owner("app.h", raw(t, key("_id", bson.Timestamp{T: 1}))); !errors.Is(err, ErrNotHashable) {
		t.Errorf("a timestamp under a hashed field: got %v, want ErrNotHashable", err)
	}
}

// Unsharded collections live on their database's primary shard; a
// collection config.collections marks dropped counts as unsharded; a
// database config.databases does not list has no known owner.
func TestOwnerUnsharded(t *testing.T) {
	o, err := NewOwners(
		raws(t, bson.D{{Key: "_id", Value: "app"}, {Key: "primary", Value: "s1"}, {Key: "partitioned", Value: true}}),
		raws(t, bson.D{{Key: "_id", Value: "app.gone"}, {Key: "key", Value: key("_id", 1)}, {Key: "dropped", Value: true}}),
		raws(t, bson.D{{Key: "_id", Value: "app.gone-_id_MinKey"}, {Key: "ns", Value: "app.gone"}, {Key: "min", Value: key("_id", bson.MinKey{})},
			{Key: "max", Value: key("_id", bson.MaxKey{})}, {Key: "shard", Value: "s0"}}))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ ns, want string }{{"app.plain", "s1"}, {"app.gone", "s1"}, {"other.plain", ""}} {
		got, err := o.Owner(c.ns, raw(t, key("_id", 1)))
		if err != nil || got != c.want {
			t.Errorf("%s: owner %q (%v), want %q", c.ns, got, err, c.want)
		}
	}
}

// Routing documents of the wrong shape are refused, naming what is wrong.
func TestNewOwnersRefusesBadShapes(t *testing.T) {
	coll := raws(t, bson.D{{Key: "_id", Value: "app.c"}, {Key: "key", Value: key("a", 1, "b", 1)}})
	for name, c := range map[string]struct {
		dbs, colls, chunks []bson.Raw
		want               string
	}{
		"database without primary": {dbs: raws(t, bson.D{{Key: "_id", Value: "app"}}), want: "primary"},
		"key of another kind":      {colls: raws(t, bson.D{{Key: "_id", Value: "app.c"}, {Key: "key", Value: key("a", "2d")}}), want: "hashed"},
		"bound of another width": {colls: coll, chunks: raws(t, bson.D{{Key: "ns", Value: "app.c"}, {Key: "min", Value: key("a", bson.MinKey{})},
			{Key: "max", Value: key("a", bson.MaxKey{}, "b", bson.MaxKey{})}, {Key: "shard", Value: "s0"}}), want: "does not fit the shard key"},
	} {
		_, err := NewOwners(c.dbs, c.colls, c.chunks)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error containing %q", name, err, c.want)
		}
	}
}

// CompareValues follows MongoDB's order across and within types.
func TestCompareValues(t *testing.T) {
	ordered := []any{
		bson.MinKey{}, bson.Undefined{}, bson.Null{}, nanValue(), -1.5, int32(-1), int64(0), 0.5, dec(t, "1"), int64(1 << 60), 1e300,
		"", "a", "ab", "b", bson.D{}, bson.D{{Key: "a", Value: 1}}, bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 0}}, bson.D{{Key: "b", Value: 0}},
		bson.A{}, bson.A{1}, bson.Binary{Subtype: 5, Data: []byte{1}}, bson.Binary{Subtype: 0, Data: []byte{0, 0}},
		oid(t, "000000000000000000000001"), false, true, bson.DateTime(-1), bson.DateTime(5),
		bson.Timestamp{T: 1}, bson.Timestamp{T: 1 << 31}, bson.Regex{Pattern: "a"}, bson.MaxKey{},
	}
	for i := range ordered {
		for j := range ordered {
			c, err := CompareValues(rawValue(t, ordered[i]), rawValue(t, ordered[j]))
			if err != nil {
				t.Fatalf("%v vs %v: %v", ordered[i], ordered[j], err)
			}
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if c != want {
				t.Errorf("compare %v with %v: %d, want %d", ordered[i], ordered[j], c, want)
			}
		}
	}
	for _, eq := range [][2]any{{int32(3), 3.0}, {int64(3), dec(t, "3.00")}, {"x", bson.Symbol("x")}} {
		if c, err := CompareValues(rawValue(t, eq[0]), rawValue(t, eq[1])); err != nil || c != 0 {
			t.Errorf("%v and %v: %d (%v), want equal", eq[0], eq[1], c, err)
		}
	}
}

func nanValue() float64 { var z float64; return z / z }
