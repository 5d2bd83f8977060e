package replay

import (
	"errors"
	"fmt"
	"strconv"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// A $v:2 delta ("diff") is applied here exactly as the server's
// document_diff_applier does (shared/oplog/README.md §5.3, §5.4): fields named
// in "u" are written in place, missing "u" fields and every "i" field are
// appended ("u" first, then "i", in diff order), "s<name>" recurses when the
// types match and writes null otherwise.

// docDiff is a parsed document diff.
type docDiff struct {
	del    map[string]bool
	upd    []elem // "u" in diff order
	ins    []elem // "i" in diff order
	sub    map[string]bson.Raw
	byName map[string]byte // name -> section ('d','u','i','s')
}

// maxDiffDepth bounds recursion on hostile input (BSON nests at most ~100 deep anyway).
const maxDiffDepth = 200

var errDiff = errors.New("malformed $v:2 diff")

func parseDocDiff(diff bson.Raw) (*docDiff, error) {
	es, err := elems(diff)
	if err != nil {
		return nil, err
	}
	d := &docDiff{del: map[string]bool{}, sub: map[string]bson.Raw{}, byName: map[string]byte{}}
	add := func(name string, sec byte) error {
		if _, dup := d.byName[name]; dup {
			return fmt.Errorf("%w: field %q named twice", errDiff, name)
		}
		d.byName[name] = sec
		return nil
	}
	for _, e := range es {
		switch {
		case e.key == "d" || e.key == "u" || e.key == "i":
			if e.val.Type != bson.TypeEmbeddedDocument {
				return nil, fmt.Errorf("%w: section %q is %s, not a document", errDiff, e.key, e.val.Type)
			}
			fields, err := elems(e.val.Document())
			if err != nil {
				return nil, err
			}
			for _, f := range fields {
				if err := add(f.key, e.key[0]); err != nil {
					return nil, err
				}
				switch e.key {
				case "d":
					d.del[f.key] = true
				case "u":
					d.upd = append(d.upd, f)
				default:
					d.ins = append(d.ins, f)
				}
			}
		case len(e.key) > 0 && e.key[0] == 's':
			if e.val.Type != bson.TypeEmbeddedDocument {
				return nil, fmt.Errorf("%w: sub-diff %q is %s, not a document", errDiff, e.key, e.val.Type)
			}
			if err := add(e.key[1:], 's'); err != nil {
				return nil, err
			}
			d.sub[e.key[1:]] = e.val.Document()
		default:
			// "b" (binary column diffs of time-series buckets, after 8.0) and
			// anything newer: refuse rather than lose data.
			return nil, fmt.Errorf("%w: unknown section %q", errDiff, e.key)
		}
	}
	return d, nil
}

// isArrayDiff reports whether a sub-diff is an array diff (starts with a: true).
func isArrayDiff(diff bson.Raw) bool {
	es, err := diff.Elements()
	if err != nil || len(es) == 0 {
		return false
	}
	v := es[0].Value()
	return es[0].Key() == "a" && v.Type == bson.TypeBoolean && v.Boolean()
}

// applyDiff applies a document diff to doc and returns the new document.
func applyDiff(doc, diff bson.Raw) (bson.Raw, error) {
	return applyDocDiff(doc, diff, 0)
}

func applyDocDiff(doc, diff bson.Raw, depth int) (bson.Raw, error) {
	if depth > maxDiffDepth {
		return nil, fmt.Errorf("%w: nested too deep", errDiff)
	}
	d, err := parseDocDiff(diff)
	if err != nil {
		return nil, err
	}
	fields, err := elems(doc)
	if err != nil {
		return nil, err
	}
	appended := map[string]bool{} // "u" names written in place
	out := make([]elem, 0, len(fields)+len(d.upd)+len(d.ins))
	for _, f := range fields {
		switch d.byName[f.key] {
		case 'd', 'i':
			// dropped; "i" fields come back at the end
		case 'u':
			out = append(out, elem{f.key, updValue(d.upd, f.key)})
			appended[f.key] = true
		case 's':
			v, err := applySub(f.val, d.sub[f.key], depth)
			if err != nil {
				return nil, err
			}
			out = append(out, elem{f.key, v})
		default:
			out = append(out, f)
		}
	}
	for _, u := range d.upd {
		if !appended[u.key] {
			out = append(out, u)
		}
	}
	out = append(out, d.ins...)
	return build(out), nil
}

func updValue(upd []elem, name string) bson.RawValue {
	for _, u := range upd {
		if u.key == name {
			return u.val
		}
	}
	return nullValue
}

// applySub applies a nested diff to a value: recursing when the kinds match
// (document diff on a document, array diff on an array), null otherwise.
func applySub(v bson.RawValue, sub bson.Raw, depth int) (bson.RawValue, error) {
	if isArrayDiff(sub) {
		if v.Type != bson.TypeArray {
			return nullValue, nil
		}
		arr, err := applyArrayDiff(bson.Raw(v.Array()), sub, depth+1)
		if err != nil {
			return bson.RawValue{}, err
		}
		return arrayValue(arr), nil
	}
	if v.Type != bson.TypeEmbeddedDocument {
		return nullValue, nil
	}
	d, err := applyDocDiff(v.Document(), sub, depth+1)
	if err != nil {
		return bson.RawValue{}, err
	}
	return docValue(d), nil
}

// arrayEntry is one "u<k>" or "s<k>" entry of an array diff.
type arrayEntry struct {
	idx int
	sub bool // s<k>: nested diff; else u<k>: new value
	val bson.RawValue
}

func parseArrayDiff(diff bson.Raw) (newLen int, hasLen bool, entries []arrayEntry, err error) {
	es, err := elems(diff)
	if err != nil {
		return 0, false, nil, err
	}
	last := -1
	for _, e := range es[1:] { // es[0] is a: true
		switch {
		case e.key == "l":
			n, ok := e.val.AsInt64OK()
			if !ok || n < 0 || n > maxArrayLen {
				return 0, false, nil, fmt.Errorf("%w: bad array length %v", errDiff, e.val)
			}
			newLen, hasLen = int(n), true
		case len(e.key) > 1 && (e.key[0] == 'u' || e.key[0] == 's'):
			k, perr := strconv.Atoi(e.key[1:])
			if perr != nil || k < 0 || k > maxArrayLen || k <= last {
				return 0, false, nil, fmt.Errorf("%w: bad array entry %q", errDiff, e.key)
			}
			if e.key[0] == 's' && e.val.Type != bson.TypeEmbeddedDocument {
				return 0, false, nil, fmt.Errorf("%w: array sub-diff %q is not a document", errDiff, e.key)
			}
			last = k
			entries = append(entries, arrayEntry{idx: k, sub: e.key[0] == 's', val: e.val})
		default:
			return 0, false, nil, fmt.Errorf("%w: unknown array diff field %q", errDiff, e.key)
		}
	}
	return newLen, hasLen, entries, nil
}

// maxArrayLen bounds padding so a corrupt entry cannot allocate without limit
// (a BSON document is at most 16 MiB; one null element takes 3 bytes or more).
const maxArrayLen = 16 << 20 / 3

func applyArrayDiff(arr, diff bson.Raw, depth int) (bson.Raw, error) {
	if depth > maxDiffDepth {
		return nil, fmt.Errorf("%w: nested too deep", errDiff)
	}
	newLen, hasLen, entries, err := parseArrayDiff(diff)
	if err != nil {
		return nil, err
	}
	old, err := arrayValues(arr)
	if err != nil {
		return nil, err
	}
	if !hasLen {
		newLen = len(old)
	}
	out := make([]bson.RawValue, 0, newLen)
	k := 0
	for ; k < min(len(old), newLen); k++ {
		if len(entries) > 0 && entries[0].idx == k {
			e := entries[0]
			entries = entries[1:]
			if !e.sub {
				out = append(out, e.val)
				continue
			}
			v, err := applySub(old[k], e.val.Document(), depth)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
			continue
		}
		out = append(out, old[k])
	}
	// Entries below k that fell past a truncation are dropped with their elements.
	for len(entries) > 0 && entries[0].idx < k {
		entries = entries[1:]
	}
	for k < newLen || len(entries) > 0 {
		switch {
		case len(entries) > 0 && entries[0].idx == k:
			if entries[0].sub {
				out = append(out, nullValue)
			} else {
				out = append(out, entries[0].val)
			}
			entries = entries[1:]
		default:
			out = append(out, nullValue)
		}
		k++
	}
	return buildArray(out), nil
}
