package repo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// ChunkRef names one snapshot data object and what it must hold.
type ChunkRef struct {
	Key    string `bson:"key"`
	SHA256 []byte `bson:"sha256"` // of the plaintext (concatenated documents)
	Count  int64  `bson:"count"`  // documents
	Bytes  int64  `bson:"bytes"`  // plaintext bytes
}

// CollectionManifest describes one collection of a snapshot.
type CollectionManifest struct {
	DB   string `bson:"db"`
	Name string `bson:"name"`
	// UUID is the collection id used in chunk keys (the server's collection
	// UUID in hex, or a random id when the server has none).
	UUID    string     `bson:"uuid"`
	Options bson.Raw   `bson:"options,omitempty"`
	Indexes []bson.Raw `bson:"indexes,omitempty"`
	Count   int64      `bson:"count"`
	Bytes   int64      `bson:"bytes"`
	Chunks  []ChunkRef `bson:"chunks"`
}

// ViewManifest describes one view (its definition is in Options: viewOn,
// pipeline, collation).
type ViewManifest struct {
	DB      string   `bson:"db"`
	Name    string   `bson:"name"`
	Options bson.Raw `bson:"options,omitempty"`
}

// Manifest describes a complete snapshot. It is written last: a snapshot
// without a manifest does not exist.
type Manifest struct {
	ID     string           `bson:"id"`
	Shard  string           `bson:"shard"`
	Flavor string           `bson:"flavor,omitempty"`
	Start  optime.Timestamp `bson:"start"` // oplog ts before the copy began
	End    optime.Timestamp `bson:"end"`   // consistent point: replay from Start to here
	// FromEmptyOplog: the source's oplog was empty when the copy began (a
	// new deployment). Start is then an anchor from the server's clock,
	// before every entry the source logs later, and only a timeline that
	// holds the oplog from its first entry (Timeline.FromOplogStart) can
	// replay over the snapshot.
	FromEmptyOplog bool                 `bson:"from_empty_oplog,omitempty"`
	Started        time.Time            `bson:"started"`
	Finished       time.Time            `bson:"finished"`
	Collections    []CollectionManifest `bson:"collections"`
	Views          []ViewManifest       `bson:"views,omitempty"`
	Users          []bson.Raw           `bson:"users,omitempty"`
	Roles          []bson.Raw           `bson:"roles,omitempty"`
}

// SnapshotRef names a complete snapshot, from a listing.
type SnapshotRef struct {
	Shard   string
	ID      string
	Key     string
	ModTime time.Time
}

// Started is when the snapshot started, read from its id
// ("20261125T154300Z-1a2b3c4d") so that no manifest (which may be
// encrypted) needs to be read; the manifest's write time if the id has none.
func (r SnapshotRef) Started() time.Time {
	stamp, _, _ := strings.Cut(r.ID, "-")
	if t, err := time.Parse("20060102T150405Z", stamp); err == nil {
		return t
	}
	return r.ModTime
}

// WriteChunk stores the n-th chunk of documents of one collection of a
// snapshot in progress. Callers that pack documents into one buffer as they
// read them use WriteChunkData, which saves a copy.
func (r *Repository) WriteChunk(ctx context.Context, shard, snapshotID, collectionID string, n int, docs []bson.Raw) (ChunkRef, error) {
	if len(docs) == 0 {
		return ChunkRef{}, fmt.Errorf("write chunk: chunk %d with no documents: %w", n, ErrInvalid)
	}
	payload, err := joinDocs(docs)
	if err != nil {
		return ChunkRef{}, fmt.Errorf("write chunk: %w", err)
	}
	defer putBuf(payload)
	return r.WriteChunkData(ctx, shard, snapshotID, collectionID, n, payload)
}

// WriteChunkData stores the n-th chunk of one collection of a snapshot in
// progress: data is the chunk's documents, concatenated BSON (each one's
// length prefix is checked, its content is not). WriteChunkData does not
// keep data: the caller may reuse it once it returns.
func (r *Repository) WriteChunkData(ctx context.Context, shard, snapshotID, collectionID string, n int, data []byte) (ChunkRef, error) {
	if err := checkSnapshotIDs(shard, snapshotID, collectionID); err != nil {
		return ChunkRef{}, fmt.Errorf("write chunk: %w", err)
	}
	count, err := countDocs(data)
	if err == nil && (n < 0 || count == 0) {
		err = fmt.Errorf("chunk %d with %d documents: %w", n, count, ErrInvalid)
	}
	if err != nil {
		return ChunkRef{}, fmt.Errorf("write chunk: %w", err)
	}
	ref := ChunkRef{Key: chunkKey(shard, snapshotID, collectionID, n), Count: int64(count), Bytes: int64(len(data))}
	_, sum, err := r.putObjectSum(ctx, ref.Key, KindChunk, data)
	if err != nil {
		return ChunkRef{}, err
	}
	ref.SHA256 = sum[:]
	return ref, nil
}

// ReadChunk loads a chunk's documents and checks them against ref.
func (r *Repository) ReadChunk(ctx context.Context, ref ChunkRef) ([]bson.Raw, error) {
	payload, sum, err := r.getObject(ctx, ref.Key, KindChunk)
	if err != nil {
		return nil, err
	}
	if string(sum[:]) != string(ref.SHA256) {
		return nil, fmt.Errorf("decode object %s: %w: sha256 differs from the manifest's", ref.Key, ErrCorrupt)
	}
	docs, err := decodeDocs(payload)
	if err != nil {
		return nil, fmt.Errorf("decode object %s: %w", ref.Key, err)
	}
	if int64(len(docs)) != ref.Count {
		return nil, fmt.Errorf("decode object %s: %w: %d documents, manifest says %d", ref.Key, ErrCorrupt, len(docs), ref.Count)
	}
	return docs, nil
}

func checkSnapshotIDs(shard, snapshotID, collectionID string) error {
	if err := checkShard(shard); err != nil {
		return err
	}
	if err := checkID("snapshot id", snapshotID, ""); err != nil {
		return err
	}
	if collectionID == "" {
		return nil
	}
	return checkID("collection id", collectionID, "")
}

// WriteManifest makes a snapshot exist. It first checks that every chunk the
// manifest names is stored (durable), then writes the manifest.
func (r *Repository) WriteManifest(ctx context.Context, m Manifest) error {
	m.Started, m.Finished = m.Started.UTC(), m.Finished.UTC()
	if err := m.validate(); err != nil {
		return fmt.Errorf("write manifest: %v: %w", err, ErrInvalid)
	}
	for _, c := range m.Collections {
		for _, ch := range c.Chunks {
			if _, err := r.store.Stat(ctx, ch.Key); err != nil {
				return fmt.Errorf("write manifest %s: chunk %s: %w", m.ID, ch.Key, err)
			}
		}
	}
	return r.putBSON(ctx, manifestKey(m.Shard, m.ID), KindManifest, m)
}

// validate checks what a reader relies on: ids usable in keys, chunk keys
// that belong to this snapshot and collection, well-formed checksums.
func (m Manifest) validate() error {
	if err := checkSnapshotIDs(m.Shard, m.ID, ""); err != nil {
		return err
	}
	if m.End.Before(m.Start) {
		return fmt.Errorf("end %s is before start %s", m.End, m.Start)
	}
	if err := m.validateDocs(); err != nil {
		return err
	}
	for _, c := range m.Collections {
		if err := checkID("collection id", c.UUID, ""); err != nil {
			return fmt.Errorf("collection %s.%s: %w", c.DB, c.Name, err)
		}
		var count, size int64
		for n, ch := range c.Chunks {
			if ch.Key != chunkKey(m.Shard, m.ID, c.UUID, n) {
				return fmt.Errorf("collection %s.%s: chunk %d has key %q", c.DB, c.Name, n, ch.Key)
			}
			if len(ch.SHA256) != sha256.Size || ch.Count <= 0 || ch.Bytes <= 0 {
				return fmt.Errorf("collection %s.%s: chunk %d: bad checksum or counts", c.DB, c.Name, n)
			}
			count, size = count+ch.Count, size+ch.Bytes
		}
		if count != c.Count || size != c.Bytes {
			return fmt.Errorf("collection %s.%s: counts %d/%d differ from its chunks' %d/%d",
				c.DB, c.Name, c.Count, c.Bytes, count, size)
		}
	}
	return nil
}

// validateDocs checks every embedded BSON document (options, indexes,
// views, users, roles): a restore must not find out halfway through.
func (m Manifest) validateDocs() error {
	var docs []bson.Raw
	for _, c := range m.Collections {
		docs = append(append(docs, c.Options), c.Indexes...)
	}
	for _, v := range m.Views {
		docs = append(docs, v.Options)
	}
	docs = append(append(docs, m.Users...), m.Roles...)
	for i, d := range docs {
		if d == nil {
			continue
		}
		if err := d.Validate(); err != nil {
			return fmt.Errorf("embedded document %d: %v", i, err)
		}
	}
	return nil
}

// decodeManifest parses and checks a manifest payload.
func decodeManifest(payload []byte) (Manifest, error) {
	var m Manifest
	if err := bson.Unmarshal(payload, &m); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	if err := m.validate(); err != nil {
		return m, fmt.Errorf("%w: manifest: %v", ErrCorrupt, err)
	}
	return m, nil
}

// ReadManifest loads a snapshot's manifest.
func (r *Repository) ReadManifest(ctx context.Context, shard, id string) (Manifest, error) {
	if err := checkSnapshotIDs(shard, id, ""); err != nil {
		return Manifest{}, fmt.Errorf("read manifest: %w", err)
	}
	key := manifestKey(shard, id)
	payload, _, err := r.getObject(ctx, key, KindManifest)
	if err != nil {
		return Manifest{}, err
	}
	m, err := decodeManifest(payload)
	if err != nil {
		return m, fmt.Errorf("decode object %s: %w", key, err)
	}
	if m.Shard != shard || m.ID != id {
		return m, fmt.Errorf("decode object %s: %w: holds snapshot %s/%s", key, ErrCorrupt, m.Shard, m.ID)
	}
	return m, nil
}

// ListSnapshots lists complete snapshots (those with a manifest) of one
// shard, or of every shard if shard is "", in id (time) order per shard.
func (r *Repository) ListSnapshots(ctx context.Context, shard string) ([]SnapshotRef, error) {
	prefix := prefixSnapshots
	if shard != "" {
		if err := checkShard(shard); err != nil {
			return nil, fmt.Errorf("list snapshots: %w", err)
		}
		prefix += shard + "/"
	}
	infos, err := r.listKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]SnapshotRef, 0, len(infos))
	for _, i := range infos {
		sh, id, ok := strings.Cut(strings.TrimPrefix(i.Key, prefixSnapshots), "/")
		if !ok || checkSnapshotIDs(sh, id, "") != nil {
			return nil, fmt.Errorf("list snapshots: %w: unexpected key %q", ErrCorrupt, i.Key)
		}
		out = append(out, SnapshotRef{Shard: sh, ID: id, Key: i.Key, ModTime: i.ModTime})
	}
	return out, nil
}

// DeleteSnapshot removes a snapshot: its manifest first (so it stops
// existing at once), then its data objects. Re-running it finishes an
// interrupted delete. The caller holds the exclusive lock.
func (r *Repository) DeleteSnapshot(ctx context.Context, shard, id string) error {
	if err := checkSnapshotIDs(shard, id, ""); err != nil {
		return fmt.Errorf("delete snapshot: %w", err)
	}
	if err := r.deleteIfExists(ctx, manifestKey(shard, id)); err != nil {
		return err
	}
	infos, err := r.listKeys(ctx, prefixData+shard+"/"+id+"/")
	if err != nil {
		return err
	}
	for _, i := range infos {
		if err := r.deleteIfExists(ctx, i.Key); err != nil {
			return err
		}
	}
	return nil
}
