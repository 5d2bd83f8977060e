package cluster

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"fmt"
	"math"
	"math/big"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// CompareValues orders two BSON values as MongoDB does (the simple
// collation, as chunk bounds are compared): first by canonical type
// (MinKey < null < numbers < strings < documents < arrays < binary <
// ObjectId < booleans < dates < timestamps < regular expressions < ... <
// MaxKey), then within it: numbers by value whatever their type (NaN
// below every other number), strings byte-wise, documents and arrays
// element by element (type, then field name, then value; the shorter
// first), binary by length then subtype then bytes. It returns -1, 0 or
// +1, and an error for a type MongoDB does not order or a value whose
// bytes are damaged.
func CompareValues(a, b bson.RawValue) (int, error) {
	ca, ok := canonicalType(a.Type)
	if !ok {
		return 0, fmt.Errorf("compare BSON type %s: not ordered", a.Type)
	}
	cb, ok := canonicalType(b.Type)
	if !ok {
		return 0, fmt.Errorf("compare BSON type %s: not ordered", b.Type)
	}
	if ca != cb {
		return cmp.Compare(ca, cb), nil
	}
	switch a.Type {
	case bson.TypeMinKey, bson.TypeMaxKey, bson.TypeNull, bson.TypeUndefined:
		return 0, nil
	case bson.TypeDouble, bson.TypeInt32, bson.TypeInt64, bson.TypeDecimal128:
		return compareNumbers(a, b)
	case bson.TypeString, bson.TypeSymbol, bson.TypeJavaScript:
		return compareStrings(a.Value, b.Value)
	case bson.TypeEmbeddedDocument, bson.TypeArray:
		return compareDocuments(a.Value, b.Value)
	case bson.TypeBinary, bson.TypeDBPointer:
		// Length first, then the bytes (subtype then data for binary).
		if len(a.Value) != len(b.Value) {
			return cmp.Compare(len(a.Value), len(b.Value)), nil
		}
		return bytes.Compare(a.Value, b.Value), nil
	case bson.TypeObjectID:
		return bytes.Compare(a.Value, b.Value), nil
	case bson.TypeBoolean:
		return cmp.Compare(btoi(a.Boolean()), btoi(b.Boolean())), nil
	case bson.TypeDateTime:
		return cmp.Compare(a.DateTime(), b.DateTime()), nil
	case bson.TypeTimestamp:
		if len(a.Value) != 8 || len(b.Value) != 8 {
			return 0, fmt.Errorf("compare timestamps: %w", errCorrupt)
		}
		return cmp.Compare(binary.LittleEndian.Uint64(a.Value), binary.LittleEndian.Uint64(b.Value)), nil
	case bson.TypeRegex:
		pa, fa := a.Regex()
		pb, fb := b.Regex()
		if c := cmp.Compare(pa, pb); c != 0 {
			return c, nil
		}
		return cmp.Compare(fa, fb), nil
	case bson.TypeCodeWithScope:
		ca, sa := a.CodeWithScope()
		cb, sb := b.CodeWithScope()
		if c := cmp.Compare(ca, cb); c != 0 {
			return c, nil
		}
		return compareDocuments(sa, sb)
	}
	return 0, fmt.Errorf("compare BSON type %s: not ordered", a.Type)
}

// compareStrings orders two BSON strings (int32 length with the NUL,
// bytes, NUL) by their bytes: on the common prefix, then the shorter.
func compareStrings(a, b []byte) (int, error) {
	sa, ok1 := stringBytes(a)
	sb, ok2 := stringBytes(b)
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("compare strings: %w", errCorrupt)
	}
	return bytes.Compare(sa, sb), nil
}

func stringBytes(v []byte) ([]byte, bool) {
	if len(v) < 5 {
		return nil, false
	}
	n := int(int32(binary.LittleEndian.Uint32(v)))
	if n < 1 || 4+n > len(v) {
		return nil, false
	}
	return v[4 : 4+n-1], true
}

// compareDocuments orders two documents (or arrays) element by element:
// canonical type, field name, value; a document that ends first is less.
func compareDocuments(a, b []byte) (int, error) {
	ea, err := bson.Raw(a).Elements()
	if err != nil {
		return 0, fmt.Errorf("compare documents: %w", err)
	}
	eb, err := bson.Raw(b).Elements()
	if err != nil {
		return 0, fmt.Errorf("compare documents: %w", err)
	}
	for i := 0; i < len(ea) && i < len(eb); i++ {
		va, vb := ea[i].Value(), eb[i].Value()
		ca, okA := canonicalType(va.Type)
		cb, okB := canonicalType(vb.Type)
		if okA && okB && ca != cb {
			return cmp.Compare(ca, cb), nil
		}
		if c := cmp.Compare(ea[i].Key(), eb[i].Key()); c != 0 {
			return c, nil
		}
		if c, err := CompareValues(va, vb); err != nil || c != 0 {
			return c, err
		}
	}
	return cmp.Compare(len(ea), len(eb)), nil
}

// compareNumbers orders two numbers of any BSON number type exactly.
func compareNumbers(a, b bson.RawValue) (int, error) {
	na, err := toNumber(a)
	if err != nil {
		return 0, err
	}
	nb, err := toNumber(b)
	if err != nil {
		return 0, err
	}
	switch {
	case na.nan || nb.nan:
		return cmp.Compare(btoi(!na.nan), btoi(!nb.nan)), nil // NaN below all
	case na.inf != 0 || nb.inf != 0:
		return cmp.Compare(na.inf, nb.inf), nil // both finite compared below
	case na.isInt && nb.isInt:
		return cmp.Compare(na.i, nb.i), nil
	case na.isFloat && nb.isFloat:
		return cmp.Compare(na.f, nb.f), nil
	}
	return na.rat().Cmp(nb.rat()), nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// number is a BSON number: NaN, an infinity (inf ±1), an int64, a finite
// double, or a finite decimal (coefficient × 10^exp).
type number struct {
	nan            bool
	inf            int
	isInt, isFloat bool
	i              int64
	f              float64
	coef           *big.Int
	exp            int
}

func toNumber(v bson.RawValue) (number, error) {
	switch v.Type {
	case bson.TypeInt32:
		n, ok := v.Int32OK()
		return number{isInt: true, i: int64(n)}, okErr(ok)
	case bson.TypeInt64:
		n, ok := v.Int64OK()
		return number{isInt: true, i: n}, okErr(ok)
	case bson.TypeDouble:
		f, ok := v.DoubleOK()
		switch {
		case math.IsNaN(f):
			return number{nan: true}, okErr(ok)
		case math.IsInf(f, 0):
			return number{inf: int(math.Copysign(1, f))}, okErr(ok)
		}
		return number{isFloat: true, f: f}, okErr(ok)
	case bson.TypeDecimal128:
		d, ok := v.Decimal128OK()
		if !ok {
			return number{}, okErr(ok)
		}
		if d.IsNaN() {
			return number{nan: true}, nil
		}
		if s := d.IsInf(); s != 0 {
			return number{inf: s}, nil
		}
		coef, exp, err := d.BigInt()
		if err != nil {
			return number{}, fmt.Errorf("compare decimal %s: %w", d, err)
		}
		return number{coef: coef, exp: exp}, nil
	}
	return number{}, fmt.Errorf("compare %s as a number: not a number", v.Type)
}

func okErr(ok bool) error {
	if ok {
		return nil
	}
	return fmt.Errorf("compare numbers: %w", errCorrupt)
}

// rat is a finite number exactly.
func (n number) rat() *big.Rat {
	switch {
	case n.isInt:
		return new(big.Rat).SetInt64(n.i)
	case n.isFloat:
		return new(big.Rat).SetFloat64(n.f) // exact for a finite double
	}
	pow := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(abs(n.exp))), nil)
	if n.exp >= 0 {
		return new(big.Rat).SetInt(new(big.Int).Mul(n.coef, pow))
	}
	return new(big.Rat).SetFrac(n.coef, pow)
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}
