package cluster

import (
	"errors"
	"math"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// rawValue marshals v as one BSON value.
func rawValue(t *testing.T, v any) bson.RawValue {
	t.Helper()
	typ, data, err := bson.MarshalValue(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return bson.RawValue{Type: typ, Value: data}
}

func dec(t *testing.T, s string) bson.Decimal128 {
	t.Helper()
	d, err := bson.ParseDecimal128(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func oid(t *testing.T, s string) bson.ObjectID {
	t.Helper()
	id, err := bson.ObjectIDFromHex(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// Expected hashes from MongoDB's own unit test of BSONElementHasher:
// mongodb/mongo src/mongo/db/hasher_test.cpp (commit d75d32970a63, tests
// HashIntOrLongOrDouble, HashMinKey, HashMaxKey, HashUndefined, HashNull,
// HashString, HashObject, HashArray, HashBinary, HashObjectId,
// HashBoolean, HashTimeStamp (its Date_t cases), HashRegEx, HashDBRef,
// HashCode, HashCodeWScope), "hard-coded checks to ensure the hash
// function is consistent across platforms and server versions". The
// numbers 42, 0, 1 and -1 are the same file's; the Decimal128 and edge
// double rows reuse them through the squashing rule of
// BSONElement::safeNumberLongForHash (src/mongo/bson/bsonelement.h) and
// the clamping its test bsonelement_test.cpp (SafeNumberLongPositiveBound,
// SafeNumberLongNegativeBound) asserts.
func TestHashedValueVectors(t *testing.T) {
	const (
		h42     = -944302157085130861
		h0      = 4854801880128277513
		h1      = 5902408780260971510
		hMinus1 = 1140205862565771219
		hMax64  = 921523596458303250  // math.MaxInt64 and math.MaxFloat64
		hMin64  = 4532067210535695462 // math.MinInt64 and -math.MaxFloat64
	)
	bytes := []byte{0, 1, 2, 3, 4, 6}
	uuid := []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	cases := []struct {
		name string
		v    any
		want int64
	}{
		// hasher_test.cpp HashIntOrLongOrDouble.
		{"int32 42", int32(42), h42},
		{"double 42.123", 42.123, h42},
		{"int64 42", int64(42), h42},
		{"int32 0", int32(0), h0},
		{"double 0.456", 0.456, h0},
		{"int64 0", int64(0), h0},
		{"quiet NaN", math.NaN(), h0},
		{"signaling NaN", math.Float64frombits(0x7ff4000000000000), h0},
		{"int32 1", int32(1), h1},
		{"double 1.987", 1.987, h1},
		{"int64 1", int64(1), h1},
		{"int32 -1", int32(-1), hMinus1},
		{"double -1.789", -1.789, hMinus1},
		{"int64 -1", int64(-1), hMinus1},
		{"int32 min", int32(math.MinInt32), 6165898260261354870},
		{"double int32 min", float64(math.MinInt32), 6165898260261354870},
		{"int64 int32 min", int64(math.MinInt32), 6165898260261354870},
		{"int32 max", int32(math.MaxInt32), 1143184177162245883},
		{"double int32 max", float64(math.MaxInt32), 1143184177162245883},
		{"int64 int32 max", int64(math.MaxInt32), 1143184177162245883},
		{"double max", math.MaxFloat64, hMax64},
		{"int64 max", int64(math.MaxInt64), hMax64},
		{"double -max", -math.MaxFloat64, hMin64},
		{"int64 min", int64(math.MinInt64), hMin64},
		// safeNumberLongForHash (bsonelement.h, bsonelement_test.cpp): -0
		// truncates to 0, infinities clamp, 2^63 itself becomes -2^63 and
		// the next double up clamps to 2^63-1, -2^63 is exact.
		{"double -0", math.Copysign(0, -1), h0},
		{"double +inf", math.Inf(1), hMax64},
		{"double -inf", math.Inf(-1), hMin64},
		{"double 2^63", twoTo63, hMin64},
		{"double above 2^63", math.Nextafter(twoTo63, math.Inf(1)), hMax64},
		{"double -2^63", -twoTo63, hMin64},
		// Decimal128: a number like the others, squashed by
		// safeNumberLong's decimal branch (NaN 0, clamped, else toLong
		// with its default rounding, ties to even).
		{"decimal 42", dec(t, "42"), h42},
		{"decimal 42.4", dec(t, "42.4"), h42},
		{"decimal 41.5 ties to even", dec(t, "41.5"), h42},
		{"decimal 42.5 ties to even", dec(t, "42.5"), h42},
		{"decimal 0.5 ties to even", dec(t, "0.5"), h0},
		{"decimal -0.5", dec(t, "-0.5"), h0},
		{"decimal 0.51", dec(t, "0.51"), h1},
		{"decimal -1.2", dec(t, "-1.2"), hMinus1},
		{"decimal 4.2E+1", dec(t, "4.2E+1"), h42},
		{"decimal NaN", dec(t, "NaN"), h0},
		{"decimal +inf", dec(t, "Infinity"), hMax64},
		{"decimal -inf", dec(t, "-Infinity"), hMin64},
		{"decimal 1E+30", dec(t, "1E+30"), hMax64},
		{"decimal -9223372036854775808.4", dec(t, "-9223372036854775808.4"), hMin64},
		// hasher_test.cpp, the other types.
		{"minkey", bson.MinKey{}, 7961148599568647290},
		{"maxkey", bson.MaxKey{}, 5504842513779440750},
		{"undefined", bson.Undefined{}, 40158834000849533},
		{"null", bson.Null{}, 2338878944348059895},
		{"string abc", "abc", 8478485326885698097},
		{"symbol abc", bson.Symbol("abc"), 8478485326885698097},
		{"empty string", "", 2049396243249673340},
		{"empty symbol", bson.Symbol(""), 2049396243249673340},
		{"object", bson.D{{Key: "a", Value: "abc"}, {Key: "b", Value: int64(123)}}, 4771603801758380216},
		{"empty object", bson.D{}, 7980500913326740417},
		{"array", bson.A{"bar", "baz", "qux"}, -2938911267422831539},
		{"empty array", bson.A{}, 8849948234993459283},
		{"binary general", bson.Binary{Subtype: 0, Data: bytes}, 7252465090394235301},
		{"binary custom", bson.Binary{Subtype: 128, Data: bytes}, 5736670452907618262},
		{"binary uuid", bson.Binary{Subtype: 4, Data: uuid}, 6084661258071355978},
		{"objectid", oid(t, "010203040506070809101112"), -5588663249627035708},
		{"objectid zero", oid(t, "000000000000000000000000"), -4293118519463489418},
		{"true", true, 6405873908747105701},
		{"false", false, 6289544573401934092},
		{"date", bson.DateTime(0x5566778811223344), 4476222765095560467},
		{"date zero", bson.DateTime(0), -1178696894582842035},
		{"regex", bson.Regex{Pattern: "mongodb"}, -7275792090268217043},
		{"regex with flags", bson.Regex{Pattern: ".*", Options: "i"}, 7095855029187981886},
		{"dbpointer", bson.DBPointer{DB: "c", Pointer: oid(t, "010203040506070809101112")}, 940175826736461384},
		{"dbpointer dotted", bson.DBPointer{DB: "db.c", Pointer: oid(t, "010203040506070809101112")}, 2426768198104018194},
		{"code", bson.JavaScript("func f() { return 1; }"), 6861638109178014270},
		{"code with scope", bson.CodeWithScope{Code: "func f() { return 1; }", Scope: bson.D{{Key: "c", Value: true}}}, 501342939894575968},
	}
	for _, c := range cases {
		got, err := HashedValue(rawValue(t, c.v))
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: hashed %d, want %d", c.name, got, c.want)
		}
	}
}

// A Timestamp has no trusted expected value (hasher_test.cpp's timestamp
// rows date from when it shared the Date's canonical type; it has its
// own since), so it is refused rather than guessed.
func TestHashedValueRefusesTimestamp(t *testing.T) {
	_, err := HashedValue(rawValue(t, bson.Timestamp{T: 1, I: 2}))
	if !errors.Is(err, ErrNotHashable) {
		t.Fatalf("timestamp: got %v, want ErrNotHashable", err)
	}
	_, err = HashedValue(rawValue(t, bson.D{{Key: "ts", Value: bson.Timestamp{T: 1}}}))
	if !errors.Is(err, ErrNotHashable) {
		t.Fatalf("timestamp inside a document: got %v, want ErrNotHashable", err)
	}
}
