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
// It checks the bytes as bson.Raw.Elements does, without its
// intermediate list: replay calls it for every entry and document.
func elems(doc bson.Raw) ([]elem, error) {
	if len(doc) == 0 {
		return nil, nil
	}
	length, rem, ok := bsoncore.ReadLength(doc)
	if !ok {
		return nil, fmt.Errorf("read document: %w", bsoncore.NewInsufficientBytesError(doc, rem))
	}
	out := make([]elem, 0, countElems(rem))
	for length -= 4; length > 1; {
		el, next, ok := bsoncore.ReadElement(rem)
		length -= int32(len(el))
		if !ok {
			return nil, fmt.Errorf("read document: %w", bsoncore.NewInsufficientBytesError(doc, next))
		}
		if err := el.Validate(); err != nil {
			return nil, fmt.Errorf("read document: %w", err)
		}
		out = append(out, elem{key: el.Key(), val: bson.RawValue{Type: bson.Type(el[0]), Value: el.Value().Data}})
		rem = next
	}
	return out, nil
}

// countElems counts the elements of a document's body (its bytes after the
// length) before they are checked: the capacity elems needs.
func countElems(body []byte) int {
	n := 0
	for len(body) > 1 {
		_, rest, ok := bsoncore.ReadElement(body)
		if !ok {
			break
		}
		n, body = n+1, rest
	}
	return n
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
