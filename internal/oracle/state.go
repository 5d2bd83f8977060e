// Package oracle says whether a restore is right. While a workload runs it
// records marks: an oplog timestamp and a hash of the state of every
// collection at that timestamp. Compare then checks a restored deployment
// against a mark and names the first document that differs.
package oracle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Collection is the recorded state of one collection.
type Collection struct {
	Docs  int    `json:"docs"`
	Bytes int64  `json:"bytes"`
	Hash  string `json:"hash"` // sha256 over every document's raw BSON, in _id order
	// Meta hashes Indexes and Options.
	Meta    string   `json:"meta"`
	Type    string   `json:"type,omitempty"` // "view" for views; empty for collections
	Indexes []string `json:"indexes"`        // normalized specs, canonical extended JSON, by name
	Options string   `json:"options"`        // normalized options, canonical extended JSON
	// Digests name each document by _id with a short hash of its bytes, so
	// Compare can point at the first differing document without a copy.
	Digests []Digest `json:"digests,omitempty"`

	docs []bson.Raw // the documents themselves, in memory only, with KeepDocs
}

// Documents returns the collection's documents in _id order, as raw BSON,
// when its state was recorded with KeepDocs; nil otherwise (and for a
// mark loaded from a file). They must not be modified.
func (c *Collection) Documents() []bson.Raw { return c.docs }

// Digest identifies one document's content.
type Digest struct {
	ID  string `json:"id"`  // the _id as canonical extended JSON
	Sum string `json:"sum"` // first 16 bytes of the document's sha256, hex
}

// State maps "db.coll" to the state of that collection.
type State map[string]*Collection

// Names returns the namespaces of s in order.
func (s State) Names() []string {
	names := make([]string, 0, len(s))
	for ns := range s {
		names = append(names, ns)
	}
	sort.Strings(names)
	return names
}

// SnapshotOptions tune Snapshot.
type SnapshotOptions struct {
	KeepDocs bool // keep the documents in memory, for Compare to show them
}

// Snapshot hashes every collection the filter selects (under its source
// name; Rename is not applied). Nothing may write to them meanwhile.
func Snapshot(ctx context.Context, client *mongo.Client, f Filter) (State, error) {
	return snapshot(ctx, client, f.Match, SnapshotOptions{})
}

// SnapshotWith is Snapshot with options.
func SnapshotWith(ctx context.Context, client *mongo.Client, f Filter, o SnapshotOptions) (State, error) {
	return snapshot(ctx, client, f.Match, o)
}

func snapshot(ctx context.Context, client *mongo.Client, match func(db, coll string) bool, o SnapshotOptions) (State, error) {
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	st := State{}
	for _, db := range dbs {
		if systemDBs[db] {
			continue
		}
		specs, err := listCollections(ctx, client.Database(db))
		if err != nil {
			return nil, err
		}
		for _, spec := range specs {
			if !match(db, spec.name) {
				continue
			}
			c, err := hashCollection(ctx, client.Database(db), spec, o)
			if err != nil {
				return nil, err
			}
			st[db+"."+spec.name] = c
		}
	}
	return st, nil
}

type collSpec struct {
	name, typ string
	options   bson.Raw
}

func listCollections(ctx context.Context, db *mongo.Database) ([]collSpec, error) {
	cur, err := db.ListCollections(ctx, bson.D{})
	if err != nil {
		return nil, fmt.Errorf("list collections of %s: %w", db.Name(), err)
	}
	defer cur.Close(ctx)
	var out []collSpec
	for cur.Next(ctx) {
		name, _ := cur.Current.Lookup("name").StringValueOK()
		typ, _ := cur.Current.Lookup("type").StringValueOK()
		if strings.HasPrefix(name, "system.") && name != "system.js" {
			continue // system.views, system.profile...: metadata, not user data
		}
		opts, _ := cur.Current.Lookup("options").DocumentOK()
		out = append(out, collSpec{name: name, typ: typ, options: opts})
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("list collections of %s: %w", db.Name(), err)
	}
	return out, nil
}

func hashCollection(ctx context.Context, db *mongo.Database, spec collSpec, o SnapshotOptions) (*Collection, error) {
	c := &Collection{Options: canonical(spec.options)}
	if spec.typ == "view" {
		c.Type = "view"
		c.Meta = sum(c.Options)
		return c, nil
	}
	idx, err := indexSpecs(ctx, db.Collection(spec.name))
	if err != nil {
		return nil, err
	}
	c.setIndexes(idx)

	h := sha256.New()
	err = eachDoc(ctx, db.Collection(spec.name), func(doc bson.Raw) error {
		h.Write(doc)
		c.Docs++
		c.Bytes += int64(len(doc))
		d, err := digest(doc)
		if err != nil {
			return err
		}
		c.Digests = append(c.Digests, d)
		if o.KeepDocs {
			c.docs = append(c.docs, append(bson.Raw(nil), doc...))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("hash %s.%s: %w", db.Name(), spec.name, err)
	}
	c.Hash = hex.EncodeToString(h.Sum(nil))
	return c, nil
}

// eachDoc calls fn with every document of coll in _id order. doc is only
// valid during the call.
func eachDoc(ctx context.Context, coll *mongo.Collection, fn func(doc bson.Raw) error) error {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return err
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		if err := fn(cur.Current); err != nil {
			return err
		}
	}
	return cur.Err()
}

func digest(doc bson.Raw) (Digest, error) {
	id, err := doc.LookupErr("_id")
	if err != nil {
		return Digest{}, fmt.Errorf("document without _id: %w", err)
	}
	s := sha256.Sum256(doc)
	return Digest{ID: idJSON(id), Sum: hex.EncodeToString(s[:16])}, nil
}

// idJSON renders an _id value as canonical extended JSON.
func idJSON(v bson.RawValue) string {
	doc := bson.D{{Key: "_id", Value: v}}
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return v.String()
	}
	s := strings.TrimPrefix(string(b), `{"_id":`)
	return strings.TrimSuffix(s, "}")
}

// indexSpecs lists the collection's index specs, normalized (normalIndexes):
// "v" and "ns" differ between servers and versions and say nothing about
// what the index does.
func indexSpecs(ctx context.Context, coll *mongo.Collection) ([]string, error) {
	cur, err := coll.Indexes().List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", coll.Name(), err)
	}
	defer cur.Close(ctx)
	var specs []bson.Raw
	for cur.Next(ctx) {
		specs = append(specs, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		return nil, fmt.Errorf("list indexes of %s: %w", coll.Name(), err)
	}
	return normalIndexes(specs), nil
}

// normalIndexes renders index specs as the oracle compares them: without
// "v" (version) and "ns", sorted by name.
func normalIndexes(specs []bson.Raw) []string {
	out := []string{}
	for _, s := range specs {
		out = append(out, canonical(without(s, "v", "ns")))
	}
	sort.Strings(out) // "key" and "name" come first in the rendering, so this is stable
	return out
}

// setIndexes sets the normalized index specs and the hash of the metadata.
func (c *Collection) setIndexes(idx []string) {
	c.Indexes = idx
	c.Meta = sum(strings.Join(idx, "\n") + "\n" + c.Options)
}

// without copies doc minus the named top-level fields, keeping field order.
func without(doc bson.Raw, drop ...string) bson.Raw {
	elems, err := doc.Elements()
	if err != nil {
		return doc
	}
	out := bson.D{}
	for _, e := range elems {
		skip := false
		for _, d := range drop {
			skip = skip || e.Key() == d
		}
		if !skip {
			out = append(out, bson.E{Key: e.Key(), Value: e.Value()})
		}
	}
	b, err := bson.Marshal(out)
	if err != nil {
		return doc
	}
	return b
}

func canonical(doc bson.Raw) string {
	if len(doc) == 0 {
		return "{}"
	}
	b, err := bson.MarshalExtJSON(doc, true, false)
	if err != nil {
		return fmt.Sprintf("%x", []byte(doc))
	}
	return string(b)
}

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}
