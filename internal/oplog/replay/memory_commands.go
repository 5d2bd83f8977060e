package replay

import (
	"context"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The commands a Memory carries out: the ones an Applier sends, with the
// effects and errors MongoDB documents for them.

// More server error codes a Memory answers with.
const (
	codeInvalidOptions        = 72
	codeCommandNotFound       = 59
	codeUnknownField          = 40415
	codeCommandNotSupportedOn = 166 // CommandNotSupportedOnView
)

func (m *Memory) command(_ context.Context, db string, cmd bson.Raw) error {
	es, err := elems(cmd)
	if err != nil || len(es) == 0 {
		return cmdError(codeInvalidOptions, "InvalidOptions", "empty command")
	}
	name := es[0].key
	if name == "renameCollection" {
		if db != "admin" {
			return cmdError(13, "Unauthorized", "renameCollection may only be run against the admin database")
		}
		return m.rename(es)
	}
	run, ok := memCommands[name]
	if !ok {
		return cmdError(codeCommandNotFound, "CommandNotFound", "no such command: '%s' (replay.Memory carries out only the commands an Applier sends)", name)
	}
	coll, ok := es[0].val.StringValueOK()
	if !ok || coll == "" {
		return cmdError(codeInvalidOptions, "InvalidNamespace", "%s: collection name is %s", name, es[0].val.Type)
	}
	return run(m, db, coll, es[1:])
}

var memCommands = map[string]func(m *Memory, db, coll string, rest []elem) error{
	"create":          (*Memory).create,
	"drop":            (*Memory).drop,
	"createIndexes":   (*Memory).createIndexes,
	"dropIndexes":     (*Memory).dropIndexes,
	"collMod":         (*Memory).collMod,
	"convertToCapped": (*Memory).convertToCapped,
}

// createFields are the fields create takes (MongoDB's create command is
// strict: any other is an error, as an oplog field leaking into it would be).
var createFields = map[string]bool{
	"capped": true, "autoIndexId": true, "idIndex": true, "size": true, "max": true,
	"storageEngine": true, "validator": true, "validationLevel": true, "validationAction": true,
	"indexOptionDefaults": true, "viewOn": true, "pipeline": true, "collation": true,
	"changeStreamPreAndPostImages": true, "timeseries": true, "clusteredIndex": true,
	"recordPreImages": true, "temp": true, "expireAfterSeconds": true, "encryptedFields": true,
	"flags": true, "comment": true, "writeConcern": true, "recordIdsReplicated": true,
}

func (m *Memory) create(db, coll string, rest []elem) error {
	for _, e := range rest {
		if !createFields[e.key] {
			return cmdError(codeUnknownField, "Location40415", "BSON field 'create.%s' is an unknown field.", e.key)
		}
	}
	if m.colls[db+"."+coll] != nil || m.viewDoc(db, coll) != nil {
		return cmdError(codeNamespaceExists, "NamespaceExists", "Collection %s.%s already exists.", db, coll)
	}
	if on, ok := lookup(build(rest), "viewOn"); ok {
		return m.createView(db, coll, on, rest)
	}
	m.colls[db+"."+coll] = newMemColl(without(rest, "idIndex", "writeConcern", "comment"))
	return nil
}

// createView stores the view's definition in <db>.system.views, as the
// server does: {_id: "db.view", viewOn, pipeline, collation?}.
func (m *Memory) createView(db, view string, on bson.RawValue, rest []elem) error {
	pipeline := arrayValue(buildArray(nil))
	def := []elem{{"_id", stringValue(db + "." + view)}, {"viewOn", on}, {"pipeline", pipeline}}
	for _, e := range rest {
		switch e.key {
		case "pipeline":
			def[2].val = e.val
		case "collation":
			def = append(def, e)
		}
	}
	m.implicitColl(db+".system.views").put(idKey(def[0].val), build(def))
	return nil
}

// viewDoc returns the definition of view db.view, or nil.
func (m *Memory) viewDoc(db, view string) bson.Raw {
	c := m.colls[db+".system.views"]
	if c == nil {
		return nil
	}
	return c.docs[idKey(stringValue(db+"."+view))]
}

// views lists the names of db's views.
func (m *Memory) views(db string) []string {
	var out []string
	for _, d := range m.Documents(db + ".system.views") {
		if id, ok := lookup(d, "_id"); ok {
			if vdb, view, ok := splitViewID(id); ok && vdb == db {
				out = append(out, view)
			}
		}
	}
	return out
}

func (m *Memory) drop(db, coll string, _ []elem) error {
	switch {
	case m.colls[db+"."+coll] != nil:
		delete(m.colls, db+"."+coll)
	case m.viewDoc(db, coll) != nil:
		m.colls[db+".system.views"].remove(idKey(stringValue(db + "." + coll)))
	default:
		return cmdError(codeNamespaceNotFound, "NamespaceNotFound", "ns not found: %s.%s", db, coll)
	}
	return nil
}

func (m *Memory) rename(es []elem) error {
	var from, to string
	var dropTarget bool
	for _, e := range es {
		switch e.key {
		case "renameCollection":
			from, _ = e.val.StringValueOK()
		case "to":
			to, _ = e.val.StringValueOK()
		case "dropTarget":
			dropTarget = truthy(e.val)
		}
	}
	fdb, fcoll, ferr := splitNS(from)
	tdb, tcoll, terr := splitNS(to)
	if ferr != nil || terr != nil {
		return cmdError(codeInvalidOptions, "InvalidNamespace", "renameCollection from %q to %q: not db.collection names", from, to)
	}
	src := m.colls[from]
	if src == nil {
		if m.viewDoc(fdb, fcoll) != nil {
			return cmdError(codeCommandNotSupportedOn, "CommandNotSupportedOnView", "cannot rename view %s", from)
		}
		return cmdError(codeNamespaceNotFound, "NamespaceNotFound", "Source collection %s does not exist", from)
	}
	if m.colls[to] != nil || m.viewDoc(tdb, tcoll) != nil {
		if !dropTarget {
			return cmdError(codeNamespaceExists, "NamespaceExists", "target namespace %s exists", to)
		}
		if err := m.drop(tdb, tcoll, nil); err != nil {
			return err
		}
	}
	delete(m.colls, from)
	m.colls[to] = src
	return nil
}

func (m *Memory) convertToCapped(db, coll string, rest []elem) error {
	c := m.colls[db+"."+coll]
	if c == nil {
		return cmdError(codeNamespaceNotFound, "NamespaceNotFound", "source collection %s.%s does not exist", db, coll)
	}
	c.options = setField(c.options, elem{"capped", bson.RawValue{Type: bson.TypeBoolean, Value: []byte{1}}})
	for _, e := range rest {
		if e.key == "size" {
			c.options = setField(c.options, e)
		}
	}
	c.indexes = c.indexes[:1] // the conversion keeps only the _id index
	return nil
}

func (m *Memory) collMod(db, coll string, rest []elem) error {
	if m.colls[db+"."+coll] == nil && m.viewDoc(db, coll) != nil {
		return m.collModView(db, coll, rest)
	}
	c := m.colls[db+"."+coll]
	if c == nil {
		return cmdError(codeNamespaceNotFound, "NamespaceNotFound", "ns does not exist: %s.%s", db, coll)
	}
	for _, e := range rest {
		switch e.key {
		case "index":
			if err := c.modIndex(e.val); err != nil {
				return err
			}
		case "viewOn", "pipeline":
			return cmdError(codeInvalidOptions, "InvalidOptions", "%s.%s is a collection, not a view: collMod cannot set %s", db, coll, e.key)
		case "writeConcern", "comment":
		default:
			c.options = setField(c.options, e)
		}
	}
	return nil
}

// collModView changes a view's viewOn and pipeline in its definition.
func (m *Memory) collModView(db, view string, rest []elem) error {
	def := mustElems(m.viewDoc(db, view))
	for _, e := range rest {
		switch e.key {
		case "viewOn", "pipeline":
			def = setField(def, e)
		case "writeConcern", "comment":
		default:
			return cmdError(codeInvalidOptions, "InvalidOptions", "option %s not supported on a view", e.key)
		}
	}
	m.colls[db+".system.views"].put(idKey(stringValue(db+"."+view)), build(def))
	return nil
}

// modIndex applies collMod's index change (see changeIndex).
func (c *memColl) modIndex(change bson.RawValue) error {
	if change.Type != bson.TypeEmbeddedDocument {
		return cmdError(codeInvalidOptions, "TypeMismatch", "collMod index is %s, not a document", change.Type)
	}
	i := c.findIndex(func(spec bson.Raw) bool { return changesIndex(change.Document(), spec) })
	if i < 0 {
		return cmdError(codeIndexNotFound, "IndexNotFound", "cannot find index %s", change)
	}
	c.indexes[i] = changeIndex(c.indexes[i], change.Document())
	return nil
}

func (c *memColl) findIndex(match func(bson.Raw) bool) int {
	for i, spec := range c.indexes {
		if match(spec) {
			return i
		}
	}
	return -1
}

func (m *Memory) createIndexes(db, coll string, rest []elem) error {
	var specs []bson.RawValue
	for _, e := range rest {
		if e.key == "indexes" && e.val.Type == bson.TypeArray {
			specs, _ = arrayValues(bson.Raw(e.val.Array()))
		}
	}
	if len(specs) == 0 {
		return cmdError(codeInvalidOptions, "BadValue", "createIndexes of %s.%s without indexes", db, coll)
	}
	if m.viewDoc(db, coll) != nil {
		return cmdError(codeCommandNotSupportedOn, "CommandNotSupportedOnView", "cannot create indexes on view %s.%s", db, coll)
	}
	c := m.implicitColl(db + "." + coll) // createIndexes creates a missing collection
	for _, s := range specs {
		if err := c.addIndex(s); err != nil {
			return err
		}
	}
	return nil
}

// addIndex adds a spec as the server lists it ({v: 2, key, name, the rest}),
// or checks it against the index of the same name or key.
func (c *memColl) addIndex(s bson.RawValue) error {
	if s.Type != bson.TypeEmbeddedDocument {
		return cmdError(codeInvalidOptions, "TypeMismatch", "index spec is %s", s.Type)
	}
	name, nok := lookup(s.Document(), "name")
	key, kok := lookup(s.Document(), "key")
	if !nok || !kok || name.Type != bson.TypeString || key.Type != bson.TypeEmbeddedDocument {
		return cmdError(codeInvalidOptions, "FailedToParse", "index spec %s needs a name and a key", s)
	}
	spec := build(append([]elem{{"v", int32Value(2)}, {"key", key}, {"name", name}}, without(mustElems(s.Document()), "v", "key", "name", "ns")...))
	for _, old := range c.indexes {
		oname, _ := lookup(old, "name")
		okey, _ := lookup(old, "key")
		switch {
		case oname.Equal(name) && !okey.Equal(key):
			return cmdError(codeIndexKeysConflict, "IndexKeySpecsConflict", "an index named %s exists with key %s", name.StringValue(), okey)
		case oname.Equal(name) || okey.Equal(key):
			if !sameIndexOptions(old, spec) {
				return cmdError(codeIndexOptsConflict, "IndexOptionsConflict", "index %s exists with different options or name: %s", name.StringValue(), old)
			}
			return nil // already there
		}
	}
	c.indexes = append(c.indexes, spec)
	return nil
}

// sameIndexOptions compares two specs without v and ns, in any field order.
func sameIndexOptions(a, b bson.Raw) bool {
	canon := func(d bson.Raw) string {
		fs := without(mustElems(d), "v", "ns")
		sort.Slice(fs, func(i, j int) bool { return fs[i].key < fs[j].key })
		var sb strings.Builder
		for _, f := range fs {
			sb.WriteString(f.key + "\x00" + string(rune(f.val.Type)) + string(f.val.Value) + "\x00")
		}
		return sb.String()
	}
	return canon(a) == canon(b)
}

func (m *Memory) dropIndexes(db, coll string, rest []elem) error {
	c := m.colls[db+"."+coll]
	if c == nil {
		return cmdError(codeNamespaceNotFound, "NamespaceNotFound", "ns not found: %s.%s", db, coll)
	}
	index, _ := lookup(build(rest), "index")
	var names []bson.RawValue
	switch index.Type {
	case bson.TypeArray:
		names, _ = arrayValues(bson.Raw(index.Array()))
	default:
		names = []bson.RawValue{index}
	}
	for _, n := range names {
		if s, ok := n.StringValueOK(); ok && s == "*" {
			c.indexes = c.indexes[:1]
			continue
		}
		i := c.findIndex(func(spec bson.Raw) bool {
			sn, _ := lookup(spec, "name")
			sk, _ := lookup(spec, "key")
			return sn.Equal(n) || n.Type == bson.TypeEmbeddedDocument && sk.Equal(n)
		})
		switch {
		case i < 0:
			return cmdError(codeIndexNotFound, "IndexNotFound", "index not found with name [%s]", n)
		case i == 0:
			return cmdError(codeInvalidOptions, "InvalidOptions", "cannot drop _id index")
		}
		c.indexes = append(c.indexes[:i:i], c.indexes[i+1:]...)
	}
	return nil
}
