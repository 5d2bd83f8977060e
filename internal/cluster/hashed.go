package cluster

import (
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// ErrNotHashable means rewind does not compute MongoDB's hashed value of
// a BSON type: a Timestamp (its rule is known, but no expected value from
// MongoDB checks it since its canonical type changed, so rewind does not
// guess), a deprecated or unknown type. A caller keeps what it cannot
// decide.
var ErrNotHashable = errors.New("no hashed value for this type")

// errCorrupt is a BSON value whose bytes do not fit its type.
var errCorrupt = errors.New("corrupt BSON value")

// HashedValue is MongoDB's hashed value of v, the value a hashed index
// stores and a hashed shard key's chunk bounds are ranges of (mongosh's
// convertShardKeyToHashed): the first 8 bytes, read little-endian, of the
// MD5 of the default seed (0) followed by v as BSONElementHasher::hash64
// feeds it. Each element is its canonical type (an int32; all numbers
// share one) then its value: numbers as the int64 MongoDB squashes them to
// (numberForHash), documents and arrays as their elements, each with its
// field name, then an end marker; other types as their BSON value bytes.
// It fails with ErrNotHashable for a Timestamp, and for any type without
// a canonical type.
func HashedValue(v bson.RawValue) (int64, error) {
	h := md5.New()
	var seed [4]byte // HashSeed 0 as an int32, little-endian
	h.Write(seed[:])
	if err := hashElement(h, v.Type, v.Value, "", false); err != nil {
		return 0, err
	}
	return int64(binary.LittleEndian.Uint64(h.Sum(nil)[:8])), nil
}

// canonicalTypes are MongoDB's canonical types (canonicalizeBSONType):
// the sort class of each BSON type, also fed to the hash.
var canonicalTypes = map[bson.Type]int32{
	bson.TypeMinKey: -1, bson.TypeMaxKey: 127,
	bson.TypeUndefined: 0, bson.TypeNull: 5,
	bson.TypeDouble: 10, bson.TypeInt32: 10, bson.TypeInt64: 10, bson.TypeDecimal128: 10,
	bson.TypeString: 15, bson.TypeSymbol: 15,
	bson.TypeEmbeddedDocument: 20, bson.TypeArray: 25, bson.TypeBinary: 30,
	bson.TypeObjectID: 35, bson.TypeBoolean: 40, bson.TypeDateTime: 45, bson.TypeTimestamp: 47,
	bson.TypeRegex: 50, bson.TypeDBPointer: 55, bson.TypeJavaScript: 60, bson.TypeCodeWithScope: 65,
}

// canonicalType is t's canonical type; ok is false for a type MongoDB
// does not order (a deprecated or unknown type byte).
func canonicalType(t bson.Type) (int32, bool) {
	c, ok := canonicalTypes[t]
	return c, ok
}

func writeInt32(h hash.Hash, n int32) {
	var b [4]byte
	binary.LittleEndian.PutUint32(b[:], uint32(n))
	h.Write(b[:])
}

// hashElement feeds one element: canonical type, field name with its NUL
// when inside a document, then the value.
func hashElement(h hash.Hash, t bson.Type, value []byte, name string, withName bool) error {
	ct, ok := canonicalType(t)
	if !ok || t == bson.TypeTimestamp {
		return fmt.Errorf("hash BSON type %s: %w", t, ErrNotHashable)
	}
	writeInt32(h, ct)
	if withName {
		h.Write([]byte(name))
		h.Write([]byte{0})
	}
	switch t {
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		n, err := numberForHash(bson.RawValue{Type: t, Value: value})
		if err != nil {
			return err
		}
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(n))
		h.Write(b[:])
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return hashFields(h, value)
	case bson.TypeCodeWithScope:
		// int32 total, then the code as a BSON string, then the scope:
		// the code's characters with their NUL, then the scope's elements.
		if len(value) < 8 {
			return fmt.Errorf("hash code with scope: %d bytes: %w", len(value), errCorrupt)
		}
		n := int(int32(binary.LittleEndian.Uint32(value[4:8])))
		if n < 1 || 8+n > len(value) {
			return fmt.Errorf("hash code with scope: code of %d bytes: %w", n, errCorrupt)
		}
		h.Write(value[8 : 8+n])
		return hashFields(h, value[8+n:])
	default:
		h.Write(value)
	}
	return nil
}

// hashFields feeds every element of a document or array with its field
// name, then the end marker (the EOO element: canonical type 0, no name).
func hashFields(h hash.Hash, doc []byte) error {
	elems, err := bson.Raw(doc).Elements()
	if err != nil {
		return fmt.Errorf("hash embedded document: %w", err)
	}
	for _, e := range elems {
		v := e.Value()
		if err := hashElement(h, v.Type, v.Value, e.Key(), true); err != nil {
			return err
		}
	}
	writeInt32(h, 0)
	return nil
}

// twoTo63 is 2^63 as a float64, the least double an int64 cannot hold.
const twoTo63 = float64(1 << 63)

// numberForHash is the int64 MongoDB squashes a number to before hashing
// it (BSONElement::safeNumberLongForHash): a double truncated toward zero,
// NaN as 0, values at or above 2^63 as MaxInt64 except 2^63 itself, which
// older servers turned into MinInt64 and every server since keeps so, and
// values below -2^63 as MinInt64; a Decimal128 rounded to the nearest
// integer, ties to even (Decimal128::toLong's default), NaN as 0, out of
// range as MaxInt64 or MinInt64.
func numberForHash(v bson.RawValue) (int64, error) {
	switch v.Type {
	case bson.TypeInt32:
		n, ok := v.Int32OK()
		if !ok {
			return 0, fmt.Errorf("hash int32: %w", errCorrupt)
		}
		return int64(n), nil
	case bson.TypeInt64:
		n, ok := v.Int64OK()
		if !ok {
			return 0, fmt.Errorf("hash int64: %w", errCorrupt)
		}
		return n, nil
	case bson.TypeDouble:
		d, ok := v.DoubleOK()
		if !ok {
			return 0, fmt.Errorf("hash double: %w", errCorrupt)
		}
		return doubleForHash(d), nil
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		if !ok {
			return 0, fmt.Errorf("hash decimal: %w", errCorrupt)
		}
		return decimalForHash(d)
	}
	return 0, fmt.Errorf("hash %s as a number: %w", v.Type, ErrNotHashable)
}

func doubleForHash(d float64) int64 {
	switch {
	case math.IsNaN(d):
		return 0
	case d == twoTo63:
		return math.MinInt64
	case !(d < twoTo63):
		return math.MaxInt64
	case d < -twoTo63:
		return math.MinInt64
	}
	return int64(d) // truncates toward zero; -0 is 0
}

func decimalForHash(d bson.Decimal128) (int64, error) {
	switch {
	case d.IsNaN():
		return 0, nil
	case d.IsInf() > 0:
		return math.MaxInt64, nil
	case d.IsInf() < 0:
		return math.MinInt64, nil
	}
	coef, exp, err := d.BigInt()
	if err != nil {
		return 0, fmt.Errorf("hash decimal %s: %w", d, err)
	}
	n := roundHalfEven(coef, exp)
	switch {
	case n.Cmp(big.NewInt(math.MaxInt64)) > 0:
		return math.MaxInt64, nil
	case n.Cmp(big.NewInt(math.MinInt64)) < 0:
		return math.MinInt64, nil
	}
	return n.Int64(), nil
}

// roundHalfEven is coef × 10^exp rounded to an integer, ties to even.
// Rounding before clamping to the int64 range gives what MongoDB's clamp
// then round gives: a value beyond a bound rounds to the bound or past it.
func roundHalfEven(coef *big.Int, exp int) *big.Int {
	if exp >= 0 {
		return new(big.Int).Mul(coef, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(exp)), nil))
	}
	div := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(-exp)), nil)
	q, r := new(big.Int).QuoRem(coef, div, new(big.Int)) // q truncated toward zero
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	switch c := twice.Cmp(div); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if coef.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}
