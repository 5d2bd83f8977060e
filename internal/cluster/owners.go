package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Owners is a cluster's routing table at one moment, read back from the
// config server's documents a cluster snapshot stores: for every sharded
// collection its shard key and which shard owns which key range (its
// chunks), and for every database its primary shard, which holds the
// database's unsharded collections. It answers which shard owned a
// document (Owner), so a restore can skip the copies other shards hold:
// orphans left by an interrupted chunk migration, or the leftovers of a
// finished one.
type Owners struct {
	primary map[string]string         // database → primary shard
	sharded map[string]*shardedRoutes // namespace → shard key and chunks
}

// keyField is one field of a shard key pattern: its dotted path, and
// whether its chunk bounds are ranges of its hashed value.
type keyField struct {
	path   string
	hashed bool
}

// chunkRange is one chunk: the shard owning shard keys in [min, max), one
// bound value per key field.
type chunkRange struct {
	min, max []bson.RawValue
	shard    string
}

type shardedRoutes struct {
	key    []keyField
	chunks []chunkRange // sorted by min
}

// NewOwners builds the routing table from the raw documents of
// config.databases ({_id: db, primary: shard}), config.collections ({_id:
// "db.coll", key: {field: 1 | "hashed", ...}, uuid, dropped}) and
// config.chunks ({uuid or, before 5.0, ns; min; max; shard}). A collection
// marked dropped is left out, and so are chunks of a collection it does not
// list. It fails on a document whose fields have the wrong shape.
func NewOwners(databases, collections, chunks []bson.Raw) (*Owners, error) {
	o := &Owners{primary: map[string]string{}, sharded: map[string]*shardedRoutes{}}
	for _, d := range databases {
		name, ok1 := d.Lookup("_id").StringValueOK()
		primary, ok2 := d.Lookup("primary").StringValueOK()
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("read config.databases document %s: want string _id and primary", d)
		}
		o.primary[name] = primary
	}
	byUUID := map[string]string{}
	for _, c := range collections {
		ns, key, err := collectionRoutes(c)
		if err != nil {
			return nil, err
		}
		if key == nil {
			continue // dropped
		}
		o.sharded[ns] = &shardedRoutes{key: key}
		if _, id, ok := c.Lookup("uuid").BinaryOK(); ok {
			byUUID[string(id)] = ns
		}
	}
	for _, c := range chunks {
		if err := o.addChunk(c, byUUID); err != nil {
			return nil, err
		}
	}
	for ns, r := range o.sharded {
		var err error
		slices.SortFunc(r.chunks, func(a, b chunkRange) int {
			c, e := compareKeys(a.min, b.min)
			err = errors.Join(err, e)
			return c
		})
		if err != nil {
			return nil, fmt.Errorf("sort the chunks of %s: %w", ns, err)
		}
	}
	return o, nil
}

// collectionRoutes reads one config.collections document: its namespace
// and shard key pattern (nil for a dropped collection).
func collectionRoutes(c bson.Raw) (string, []keyField, error) {
	ns, ok := c.Lookup("_id").StringValueOK()
	if !ok {
		return "", nil, fmt.Errorf("read config.collections document %s: want a string _id", c)
	}
	if dropped, _ := c.Lookup("dropped").BooleanOK(); dropped {
		return ns, nil, nil
	}
	pattern, ok := c.Lookup("key").DocumentOK()
	if !ok {
		return "", nil, fmt.Errorf("read config.collections document of %s: want a key document", ns)
	}
	elems, err := pattern.Elements()
	if err != nil || len(elems) == 0 {
		return "", nil, fmt.Errorf("read the shard key of %s: %v", ns, pattern)
	}
	key := make([]keyField, len(elems))
	for i, e := range elems {
		s, isString := e.Value().StringValueOK()
		if isString && s != "hashed" {
			return "", nil, fmt.Errorf("read the shard key of %s: field %s is %q, want 1 or \"hashed\"", ns, e.Key(), s)
		}
		key[i] = keyField{path: e.Key(), hashed: isString}
	}
	return ns, key, nil
}

// addChunk files one config.chunks document under its collection.
func (o *Owners) addChunk(c bson.Raw, byUUID map[string]string) error {
	var ns string
	if _, id, ok := c.Lookup("uuid").BinaryOK(); ok {
		ns = byUUID[string(id)]
	}
	if ns == "" { // before 5.0, or a uuid config.collections does not give
		ns, _ = c.Lookup("ns").StringValueOK()
	}
	r := o.sharded[ns]
	if r == nil {
		return nil // a chunk of a dropped or unlisted collection
	}
	shard, ok := c.Lookup("shard").StringValueOK()
	if !ok {
		return fmt.Errorf("read a config.chunks document of %s: want a string shard, got %s", ns, c)
	}
	ch := chunkRange{shard: shard}
	for _, b := range []struct {
		name string
		into *[]bson.RawValue
	}{{"min", &ch.min}, {"max", &ch.max}} {
		doc, ok := c.Lookup(b.name).DocumentOK()
		if !ok {
			return fmt.Errorf("read a config.chunks document of %s: want a %s document, got %s", ns, b.name, c)
		}
		elems, err := doc.Elements()
		if err != nil || len(elems) != len(r.key) {
			return fmt.Errorf("read a config.chunks document of %s: %s %s does not fit the shard key (%d fields)", ns, b.name, doc, len(r.key))
		}
		for _, e := range elems {
			*b.into = append(*b.into, e.Value())
		}
	}
	r.chunks = append(r.chunks, ch)
	return nil
}

// Owner names the shard that owned doc of namespace ns ("db.coll"): for a
// sharded collection the shard of the chunk whose range [min, max) holds
// the document's shard key (each field at its dotted path, a missing one
// as null, a hashed one as HashedValue), for any other collection the
// database's primary shard. It returns "" when the routing does not say: a
// database config.databases does not list (created after it was read),
// or a key no chunk covers. It fails when the key cannot be computed: an
// array on a shard key path (MongoDB refuses those), or a value
// HashedValue refuses.
func (o *Owners) Owner(ns string, doc bson.Raw) (string, error) {
	r := o.sharded[ns]
	if r == nil {
		db, _, _ := strings.Cut(ns, ".")
		return o.primary[db], nil
	}
	key, err := r.shardKey(doc)
	if err != nil {
		return "", fmt.Errorf("shard key of a document of %s: %w", ns, err)
	}
	// The last chunk whose min is at or below the key, if the key is
	// below its max.
	i, err := searchChunks(r.chunks, key)
	if err != nil || i < 0 {
		return "", err
	}
	if c, err := compareKeys(key, r.chunks[i].max); err != nil || c >= 0 {
		return "", err
	}
	return r.chunks[i].shard, nil
}

// searchChunks is the index of the last chunk whose min ≤ key, -1 if none.
func searchChunks(chunks []chunkRange, key []bson.RawValue) (int, error) {
	lo, hi := 0, len(chunks) // chunks[:lo] have min ≤ key, chunks[hi:] min > key
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		c, err := compareKeys(chunks[mid].min, key)
		if err != nil {
			return -1, err
		}
		if c <= 0 {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1, nil
}

// compareKeys orders two shard key values field by field.
func compareKeys(a, b []bson.RawValue) (int, error) {
	for i := range min(len(a), len(b)) {
		if c, err := CompareValues(a[i], b[i]); err != nil || c != 0 {
			return c, err
		}
	}
	return len(a) - len(b), nil
}

// nullValue is BSON null, what a missing shard key field counts as.
var nullValue = bson.RawValue{Type: bson.TypeNull}

// shardKey extracts doc's shard key value, hashed fields hashed.
func (r *shardedRoutes) shardKey(doc bson.Raw) ([]bson.RawValue, error) {
	key := make([]bson.RawValue, len(r.key))
	for i, f := range r.key {
		v, err := atPath(doc, f.path)
		if err != nil {
			return nil, err
		}
		if f.hashed {
			h, err := HashedValue(v)
			if err != nil {
				return nil, fmt.Errorf("field %s: %w", f.path, err)
			}
			v = bson.RawValue{Type: bson.TypeInt64, Value: binary.LittleEndian.AppendUint64(nil, uint64(h))}
		}
		key[i] = v
	}
	return key, nil
}

// atPath is the value at a dotted path of doc, null when a part of the
// path is missing or not a document. An array on the path is an error: a
// shard key never holds one.
func atPath(doc bson.Raw, path string) (bson.RawValue, error) {
	cur := doc
	for {
		name, rest, more := strings.Cut(path, ".")
		v := cur.Lookup(name)
		if v.Type == 0 { // missing
			return nullValue, nil
		}
		if v.Type == bson.TypeArray {
			return bson.RawValue{}, fmt.Errorf("field %s is an array, which a shard key cannot hold", name)
		}
		if !more {
			return v, nil
		}
		sub, ok := v.DocumentOK()
		if !ok {
			return nullValue, nil
		}
		cur, path = sub, rest
	}
}
