package replay

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A $v:1 modifier update ($set and $unset only: the primary rewrites every
// other operator into them) is applied here as the server's update tree does
// (shared/oplog/README.md §5.2): paths are applied in sorted order, numeric
// components index arrays and pad them with null, a missing path is created
// at the end of the deepest existing document.

type modOp struct {
	unset bool
	path  []string
	val   bson.RawValue
}

// parseModifier reads {$v?, $set?, $unset?} into ops in the server's order.
func parseModifier(o bson.Raw) ([]modOp, error) {
	es, err := elems(o)
	if err != nil {
		return nil, err
	}
	var ops []modOp
	for _, e := range es {
		switch e.key {
		case "$v":
			continue
		case "$set", "$unset":
			if e.val.Type != bson.TypeEmbeddedDocument {
				return nil, fmt.Errorf("read %s: not a document", e.key)
			}
			fields, err := elems(e.val.Document())
			if err != nil {
				return nil, err
			}
			for _, f := range fields {
				ops = append(ops, modOp{unset: e.key == "$unset", path: strings.Split(f.key, "."), val: f.val})
			}
		default:
			return nil, fmt.Errorf("apply modifier update: operator %q is not one the oplog uses", e.key)
		}
	}
	sort.SliceStable(ops, func(i, j int) bool { return comparePaths(ops[i].path, ops[j].path) < 0 })
	return ops, nil
}

// comparePaths orders paths as the update tree's children are ordered:
// component by component, numerically when both are array indexes.
func comparePaths(a, b []string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareFieldNames(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

func compareFieldNames(a, b string) int {
	if isIndex(a) && isIndex(b) {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
	}
	return strings.Compare(a, b)
}

// isIndex reports whether a path component is a canonical array index
// (digits only, no leading zero unless it is "0").
func isIndex(s string) bool {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// applyModifier applies a $v:1 update to doc. Paths that cannot be applied
// (a field inside a scalar: possible only when a fuzzy snapshot holds a newer
// document) are left alone; a later entry of the window rewrites them.
func applyModifier(doc, o bson.Raw) (bson.Raw, error) {
	ops, err := parseModifier(o)
	if err != nil {
		return nil, err
	}
	for _, op := range ops {
		if len(op.path) == 1 && op.path[0] == "_id" {
			continue // _id never changes
		}
		next, err := modifyDoc(doc, op, 0)
		if err != nil {
			return nil, err
		}
		doc = next
	}
	return doc, nil
}

func modifyDoc(doc bson.Raw, op modOp, depth int) (bson.Raw, error) {
	fields, err := elems(doc)
	if err != nil {
		return nil, err
	}
	name, last := op.path[depth], depth == len(op.path)-1
	for i, f := range fields {
		if f.key != name {
			continue
		}
		if last && op.unset {
			return build(append(fields[:i:i], fields[i+1:]...)), nil
		}
		v, err := modifyValue(f.val, op, depth)
		if err != nil {
			return nil, err
		}
		fields[i].val = v
		return build(fields), nil
	}
	if op.unset {
		return doc, nil
	}
	return build(append(fields, elem{name, newPath(op, depth+1)})), nil
}

// modifyValue returns the new value of the element at op.path[depth].
func modifyValue(v bson.RawValue, op modOp, depth int) (bson.RawValue, error) {
	if depth == len(op.path)-1 {
		return op.val, nil // $set in place; $unset of a field was handled by the caller
	}
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		d, err := modifyDoc(v.Document(), op, depth+1)
		return docValue(d), err
	case bson.TypeArray:
		a, err := modifyArray(bson.Raw(v.Array()), op, depth+1)
		return arrayValue(a), err
	}
	return v, nil // path through a scalar: not viable, leave it
}

func modifyArray(arr bson.Raw, op modOp, depth int) (bson.Raw, error) {
	comp := op.path[depth]
	if !isIndex(comp) {
		return arr, nil // a field name on an array: not viable
	}
	idx, _ := strconv.Atoi(comp)
	vals, err := arrayValues(arr)
	if err != nil {
		return nil, err
	}
	last := depth == len(op.path)-1
	if idx < len(vals) {
		switch {
		case last && op.unset:
			vals[idx] = nullValue // $unset keeps the array's length
		default:
			v, err := modifyValue(vals[idx], op, depth)
			if err != nil {
				return nil, err
			}
			vals[idx] = v
		}
		return buildArray(vals), nil
	}
	if op.unset {
		return arr, nil
	}
	if idx > maxArrayLen {
		return nil, fmt.Errorf("apply modifier update: array index %d too large", idx)
	}
	for len(vals) < idx {
		vals = append(vals, nullValue)
	}
	return buildArray(append(vals, newPath(op, depth+1))), nil
}

// newPath builds the value for a path that does not exist from depth on:
// the value itself, or nested documents leading to it.
func newPath(op modOp, depth int) bson.RawValue {
	v := op.val
	for i := len(op.path) - 1; i >= depth; i-- {
		v = docValue(build([]elem{{op.path[i], v}}))
	}
	return v
}
