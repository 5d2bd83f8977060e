package replay

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Memory is a deployment held in memory, for replay without a server: an
// Applier whose Memory is set reads and writes here, through the same
// translation it uses for a server (the vector tests prove the translator
// with it on forms a test server refuses). Collections hold raw documents
// by _id in natural order, never decoded, so field order and types survive
// byte for byte. It carries out what an Applier sends as MongoDB does:
// inserts create collections, a duplicate _id, a replacement changing _id
// or holding a top-level $-prefixed field, and commands on missing
// namespaces fail with the server's error codes; views are documents of
// <db>.system.views, as on a server. It keeps collection options and index
// specs but enforces neither (no validators, unique indexes, TTL or capped
// sizes).
//
// A Memory is not safe for concurrent use. Documents it returns must not be
// modified.
type Memory struct {
	colls map[string]*memColl // by "db.coll"
}

// memColl is one collection.
type memColl struct {
	order   []string            // idKeys in natural order; "" where deleted
	pos     map[string]int      // idKey -> index in order
	docs    map[string]bson.Raw // idKey -> document
	options []elem              // as listCollections shows them
	indexes []bson.Raw          // as listIndexes shows them, _id_ first
	base    string              // Seed's tag: follows renames, gone with drop and emptycapped
}

// NewMemory returns an empty in-memory deployment.
func NewMemory() *Memory { return &Memory{colls: map[string]*memColl{}} }

func newMemColl(options []elem) *memColl {
	idIndex := build([]elem{{"v", int32Value(2)}, {"key", docValue(build([]elem{{"_id", int32Value(1)}}))}, {"name", stringValue("_id_")}})
	return &memColl{pos: map[string]int{}, docs: map[string]bson.Raw{}, options: options, indexes: []bson.Raw{idIndex}}
}

// Load creates the collection ns ("db.coll") when it is missing and inserts
// docs into it, as a snapshot's documents are loaded before replay. A
// document without _id, or with an _id already present, is an error.
func (m *Memory) Load(ns string, docs []bson.Raw) error {
	if _, _, err := splitNS(ns); err != nil {
		return fmt.Errorf("load %s: %w", ns, err)
	}
	c := m.colls[ns]
	if c == nil {
		c = newMemColl(nil)
		m.colls[ns] = c
	}
	for _, d := range docs {
		id, err := docID(d)
		if err != nil {
			return fmt.Errorf("load %s: %w", ns, err)
		}
		if c.docs[idKey(id)] != nil {
			return fmt.Errorf("load %s: duplicate _id %s", ns, id)
		}
		c.put(idKey(id), d)
	}
	return nil
}

// Seed creates collection ns ("db.coll") as a snapshot recorded it, with
// no document yet: its options as listCollections showed them and its
// index specs as listIndexes did (_id_ included; none: just the _id index).
// base tags the collection: the tag follows it through renames and
// convertToCapped and is gone when it is dropped or emptied (emptycapped),
// so after a replay Base says which namespace now holds the snapshot's
// documents of ns that no entry touched (the server-free export streams
// those from the snapshot instead of holding them here). An existing ns is
// an error.
func (m *Memory) Seed(ns string, options bson.Raw, indexes []bson.Raw, base string) error {
	if _, _, err := splitNS(ns); err != nil {
		return fmt.Errorf("seed %s: %w", ns, err)
	}
	if m.colls[ns] != nil {
		return fmt.Errorf("seed %s: the collection exists", ns)
	}
	var opts []elem
	if len(options) > 0 {
		var err error
		if opts, err = elems(options); err != nil {
			return fmt.Errorf("seed %s: options: %w", ns, err)
		}
	}
	c := newMemColl(opts)
	if len(indexes) > 0 {
		c.indexes = nil
		for _, spec := range indexes {
			c.indexes = append(c.indexes, append(bson.Raw(nil), spec...))
		}
	}
	c.base = base
	m.colls[ns] = c
	return nil
}

// Base returns the tag Seed gave the collection now named ns, or "" when
// ns does not exist or was not seeded (created by the replay, or emptied).
func (m *Memory) Base(ns string) string {
	if c := m.colls[ns]; c != nil {
		return c.base
	}
	return ""
}

// Namespaces lists the collections ("db.coll"), sorted; <db>.system.views
// is one, the views it defines are not.
func (m *Memory) Namespaces() []string {
	out := make([]string, 0, len(m.colls))
	for ns := range m.colls {
		out = append(out, ns)
	}
	sort.Strings(out)
	return out
}

// Documents returns the documents of collection ns in natural order, or
// nil when it does not exist.
func (m *Memory) Documents(ns string) []bson.Raw {
	c := m.colls[ns]
	if c == nil {
		return nil
	}
	out := make([]bson.Raw, 0, len(c.docs))
	for _, k := range c.order {
		if k != "" {
			out = append(out, c.docs[k])
		}
	}
	return out
}

// Indexes returns the index specs of collection ns as listIndexes shows
// them ({v, key, name, options...}, _id_ first), or nil when it does not
// exist.
func (m *Memory) Indexes(ns string) []bson.Raw {
	if c := m.colls[ns]; c != nil {
		return append([]bson.Raw(nil), c.indexes...)
	}
	return nil
}

// Options returns the options of collection ns as listCollections shows
// them (create's options, changed by collMod and convertToCapped), and
// whether it exists.
func (m *Memory) Options(ns string) (bson.Raw, bool) {
	c := m.colls[ns]
	if c == nil {
		return nil, false
	}
	return build(c.options), true
}

func (c *memColl) put(key string, doc bson.Raw) {
	doc = append(bson.Raw(nil), doc...)
	if _, ok := c.pos[key]; !ok {
		c.pos[key] = len(c.order)
		c.order = append(c.order, key)
	}
	c.docs[key] = doc
}

func (c *memColl) remove(key string) {
	if i, ok := c.pos[key]; ok {
		c.order[i] = ""
		delete(c.pos, key)
		delete(c.docs, key)
	}
}

func (m *Memory) find(_ context.Context, db, coll string, ids []bson.RawValue, idOnly bool, docs map[string]bson.Raw) error {
	c := m.colls[db+"."+coll]
	if c == nil {
		return nil
	}
	for _, id := range ids {
		if d := c.docs[idKey(id)]; d != nil {
			if idOnly {
				d = idFilter(id)
			}
			docs[idKey(id)] = d
		}
	}
	return nil
}

func (m *Memory) collections(_ context.Context, db, name string) ([]string, error) {
	var out []string
	for ns := range m.colls {
		if d, c, _ := strings.Cut(ns, "."); d == db && (name == "" || c == name) {
			out = append(out, c)
		}
	}
	for _, view := range m.views(db) {
		if name == "" || view == name {
			out = append(out, view)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *Memory) emptyCollection(_ context.Context, db, coll string) error {
	if c := m.colls[db+"."+coll]; c != nil {
		m.colls[db+"."+coll] = &memColl{pos: map[string]int{}, docs: map[string]bson.Raw{}, options: c.options, indexes: c.indexes}
	}
	return nil
}

// bulkWrite applies the models an Applier builds, in order, as an ordered
// bulk write on a server does: the first failure stops it and is returned
// as a BulkWriteException naming the model's index.
func (m *Memory) bulkWrite(_ context.Context, db, coll string, models []mongo.WriteModel, _ *options.BulkWriteOptionsBuilder) error {
	for i, model := range models {
		if err := m.write(db+"."+coll, model); err != nil {
			if we, ok := err.(mongo.WriteError); ok {
				we.Index = i
				return mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: we, Request: model}}}
			}
			return fmt.Errorf("write %s: %w", db+"."+coll, err)
		}
	}
	return nil
}

// Server error codes a Memory answers with, as MongoDB does.
const (
	codeDollarPrefixedFieldName = 52
	codeImmutableField          = 66
	codeDuplicateKey            = 11000
)

func (m *Memory) write(ns string, model mongo.WriteModel) error {
	switch w := model.(type) {
	case *mongo.InsertOneModel:
		doc, ok := w.Document.(bson.Raw)
		if !ok {
			return fmt.Errorf("insert: document is %T, not bson.Raw", w.Document)
		}
		id, err := docID(doc)
		if err != nil {
			return err
		}
		if c := m.colls[ns]; c != nil && c.docs[idKey(id)] != nil {
			return mongo.WriteError{Code: codeDuplicateKey, Message: fmt.Sprintf("E11000 duplicate key error collection: %s index: _id_ dup key: { _id: %s }", ns, id)}
		}
		m.implicitColl(ns).put(idKey(id), doc)
		return nil
	case *mongo.ReplaceOneModel:
		doc, ok := w.Replacement.(bson.Raw)
		if !ok {
			return fmt.Errorf("replace: replacement is %T, not bson.Raw", w.Replacement)
		}
		for _, e := range mustElems(doc) {
			if strings.HasPrefix(e.key, "$") {
				return mongo.WriteError{Code: codeDollarPrefixedFieldName, Message: fmt.Sprintf(
					"The dollar ($) prefixed field '%s' in '%s' is not allowed in the context of an update's replacement document. Consider using an aggregation pipeline with $replaceWith.", e.key, e.key)}
			}
		}
		return m.replace(ns, w.Filter, doc, w.Upsert != nil && *w.Upsert)
	case *mongo.UpdateOneModel:
		doc, err := literalReplacement(w.Update)
		if err != nil {
			return err
		}
		return m.replace(ns, w.Filter, doc, w.Upsert != nil && *w.Upsert)
	case *mongo.DeleteOneModel:
		id, err := filterID(w.Filter)
		if err != nil {
			return err
		}
		if c := m.colls[ns]; c != nil {
			c.remove(idKey(id))
		}
		return nil
	}
	return fmt.Errorf("write model %T is not one an Applier sends", model)
}

// replace replaces the document the filter names by doc, inserting it when
// missing and upsert is set.
func (m *Memory) replace(ns string, filter any, doc bson.Raw, upsert bool) error {
	id, err := filterID(filter)
	if err != nil {
		return err
	}
	if newID, err := docID(doc); err != nil || !newID.Equal(id) {
		return mongo.WriteError{Code: codeImmutableField, Message: fmt.Sprintf("the replacement of _id %s would change its _id", id)}
	}
	c := m.colls[ns]
	switch {
	case c != nil && c.docs[idKey(id)] != nil:
		c.put(idKey(id), doc)
	case upsert:
		m.implicitColl(ns).put(idKey(id), doc)
	}
	return nil
}

// implicitColl returns collection ns, creating it as a write to a missing
// collection does on a server.
func (m *Memory) implicitColl(ns string) *memColl {
	c := m.colls[ns]
	if c == nil {
		c = newMemColl(nil)
		m.colls[ns] = c
	}
	return c
}

// filterID reads the _id of an {_id: <id>} filter.
func filterID(filter any) (bson.RawValue, error) {
	f, ok := filter.(bson.Raw)
	if !ok {
		return bson.RawValue{}, fmt.Errorf("filter is %T, not bson.Raw", filter)
	}
	return docID(f)
}

// literalReplacement reads the document of the only pipeline update an
// Applier sends: [{$replaceWith: {$literal: <document>}}].
func literalReplacement(update any) (bson.Raw, error) {
	p, ok := update.(bson.A)
	if len(p) == 1 && ok {
		if stage, ok := p[0].(bson.Raw); ok {
			if rw, ok := lookup(stage, "$replaceWith"); ok && rw.Type == bson.TypeEmbeddedDocument {
				if lit, ok := lookup(rw.Document(), "$literal"); ok && lit.Type == bson.TypeEmbeddedDocument {
					return lit.Document(), nil
				}
			}
		}
	}
	return nil, fmt.Errorf("update %v is not a $replaceWith of a $literal document", update)
}

func int32Value(n int32) bson.RawValue {
	return bson.RawValue{Type: bson.TypeInt32, Value: []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}}
}

// cmdError is a command's failure as a server reports it.
func cmdError(code int32, name, format string, args ...any) error {
	return mongo.CommandError{Code: code, Name: name, Message: fmt.Sprintf(format, args...)}
}
