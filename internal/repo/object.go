package repo

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/storage"
)

// putObject encodes payload as an object of the given kind and stores it.
// It returns the encoded size.
func (r *Repository) putObject(ctx context.Context, key string, kind Kind, payload []byte) (int64, error) {
	n, _, err := r.putObjectSum(ctx, key, kind, payload)
	return n, err
}

// putObjectSum is putObject that also returns the plaintext's SHA-256. The
// envelope is built in a pooled buffer, given back once the store has
// taken the bytes.
func (r *Repository) putObjectSum(ctx context.Context, key string, kind Kind, payload []byte) (int64, [32]byte, error) {
	buf := getBuf(len(payload)/2 + 1024)
	obj, sum, err := r.codec.encodeTo(buf, kind, payload)
	if err != nil {
		putBuf(buf)
		return 0, sum, fmt.Errorf("write object %s: %w", key, err)
	}
	defer putBuf(obj)
	if err := r.store.Put(ctx, key, bytes.NewReader(obj)); err != nil {
		return 0, sum, fmt.Errorf("write object %s: %w", key, err)
	}
	return int64(len(obj)), sum, nil
}

// getObject loads and decodes one object. A missing object is reported with
// storage.ErrNotFound in the chain.
func (r *Repository) getObject(ctx context.Context, key string, kind Kind) ([]byte, [32]byte, error) {
	rc, err := r.store.Get(ctx, key)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("read object %s: %w", key, err)
	}
	defer rc.Close()
	return r.codec.decode(key, kind, rc)
}

func (r *Repository) putBSON(ctx context.Context, key string, kind Kind, v any) error {
	payload, err := bson.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s %s: %w", kind, key, err)
	}
	_, err = r.putObject(ctx, key, kind, payload)
	return err
}

func (r *Repository) getBSON(ctx context.Context, key string, kind Kind, v any) error {
	payload, _, err := r.getObject(ctx, key, kind)
	if err != nil {
		return err
	}
	if err := bson.Unmarshal(payload, v); err != nil {
		return fmt.Errorf("decode object %s: %w: %s: %v", key, ErrCorrupt, kind, err)
	}
	return nil
}

// deleteIfExists removes key; a missing object is not an error (another
// process may have removed it first).
func (r *Repository) deleteIfExists(ctx context.Context, key string) error {
	err := r.store.Delete(ctx, key)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete object %s: %w", key, err)
	}
	return nil
}

// listKeys returns every object under prefix, in key order.
func (r *Repository) listKeys(ctx context.Context, prefix string) ([]storage.Info, error) {
	var out []storage.Info
	err := r.store.List(ctx, prefix, func(i storage.Info) error {
		out = append(out, i)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	return out, nil
}

// decodeDocs splits a payload of concatenated BSON documents, checking each
// one's framing, without copying.
func decodeDocs(payload []byte) ([]bson.Raw, error) {
	var docs []bson.Raw
	for rest := payload; len(rest) > 0; {
		if len(rest) < 5 {
			return nil, fmt.Errorf("%w: %d stray bytes after document %d", ErrCorrupt, len(rest), len(docs))
		}
		n := int(uint32(rest[0]) | uint32(rest[1])<<8 | uint32(rest[2])<<16 | uint32(rest[3])<<24)
		if n < 5 || n > len(rest) {
			return nil, fmt.Errorf("%w: document %d: length %d out of range", ErrCorrupt, len(docs), n)
		}
		doc := bson.Raw(rest[:n:n])
		if err := doc.Validate(); err != nil {
			return nil, fmt.Errorf("%w: document %d: %v", ErrCorrupt, len(docs), err)
		}
		docs = append(docs, doc)
		rest = rest[n:]
	}
	return docs, nil
}

// joinDocs concatenates documents into one payload, in a pooled buffer the
// caller gives back with putBuf once it no longer needs it.
func joinDocs(docs []bson.Raw) ([]byte, error) {
	n := 0
	for i, d := range docs {
		if len(d) < 5 {
			return nil, fmt.Errorf("join documents: document %d is %d bytes, not BSON: %w", i, len(d), ErrInvalid)
		}
		n += len(d)
	}
	if n > MaxObjectSize {
		return nil, fmt.Errorf("join documents: %d bytes exceeds the %d-byte object limit: %w", n, MaxObjectSize, ErrInvalid)
	}
	out := getBuf(n)
	for _, d := range docs {
		out = append(out, d...)
	}
	return out, nil
}

// countDocs counts the documents of a payload of concatenated BSON,
// checking only their length prefixes: the cheap check a writer makes on
// data it packed itself (readers validate every document: decodeDocs).
func countDocs(payload []byte) (int, error) {
	if len(payload) > MaxObjectSize {
		return 0, fmt.Errorf("%d bytes exceeds the %d-byte object limit: %w", len(payload), MaxObjectSize, ErrInvalid)
	}
	count := 0
	for rest := payload; len(rest) > 0; count++ {
		if len(rest) < 5 {
			return 0, fmt.Errorf("%d stray bytes after document %d: %w", len(rest), count, ErrInvalid)
		}
		n := int(binary.LittleEndian.Uint32(rest))
		if n < 5 || n > len(rest) || rest[n-1] != 0 {
			return 0, fmt.Errorf("document %d: length %d out of range: %w", count, n, ErrInvalid)
		}
		rest = rest[n:]
	}
	return count, nil
}
