package replay

import (
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// elem is one field of a raw document: its name and its raw value. Documents
// are edited as ordered lists of elements and rebuilt as bytes, so field
// order and value types survive exactly.
type elem struct {
	key string
	val bson.RawValue
}

// elems lists the fields of a raw document (or array) in order.
func elems(doc bson.Raw) ([]elem, error) {
	els, err := doc.Elements()
	if err != nil {
		return nil, fmt.Errorf("read document: %w", err)
	}
	out := make([]elem, len(els))
	for i, e := range els {
		out[i] = elem{key: e.Key(), val: e.Value()}
	}
	return out, nil
}

// build encodes elements as a document.
func build(es []elem) bson.Raw {
	idx, dst := bsoncore.AppendDocumentStart(nil)
	for _, e := range es {
		dst = appendElem(dst, e.key, e.val)
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return bson.Raw(dst)
}

// buildArray encodes values as an array (keys "0", "1", ...).
func buildArray(vals []bson.RawValue) bson.Raw {
	idx, dst := bsoncore.AppendArrayStart(nil)
	for i, v := range vals {
		dst = appendElem(dst, strconv.Itoa(i), v)
	}
	dst, _ = bsoncore.AppendArrayEnd(dst, idx)
	return bson.Raw(dst)
}

func appendElem(dst []byte, key string, v bson.RawValue) []byte {
	dst = bsoncore.AppendHeader(dst, bsoncore.Type(v.Type), key)
	return append(dst, v.Value...)
}

// arrayValues lists an array's values in order, ignoring its keys.
func arrayValues(arr bson.Raw) ([]bson.RawValue, error) {
	vals, err := bson.RawArray(arr).Values()
	if err != nil {
		return nil, fmt.Errorf("read array: %w", err)
	}
	return vals, nil
}

var nullValue = bson.RawValue{Type: bson.TypeNull}

func docValue(d bson.Raw) bson.RawValue {
	return bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d}
}

func arrayValue(a bson.Raw) bson.RawValue {
	return bson.RawValue{Type: bson.TypeArray, Value: a}
}

// lookup returns the value of a top-level field.
func lookup(doc bson.Raw, key string) (bson.RawValue, bool) {
	v, err := doc.LookupErr(key)
	return v, err == nil
}

// truthy reports whether a value counts as true the way the server reads
// flags: true, or a non-zero number.
func truthy(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeBoolean:
		return v.Boolean()
	case bson.TypeInt32:
		return v.Int32() != 0
	case bson.TypeInt64:
		return v.Int64() != 0
	case bson.TypeDouble:
		return v.Double() != 0
	case bson.TypeNull, bson.TypeUndefined, 0:
		return false
	}
	return true
}

func appendString(s string) []byte { return bsoncore.AppendString(nil, s) }
