package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

// The in-memory store the unit tests use behaves as every backend must.
func TestMemStoreConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return newMemStore() }, storagetest.InMemory)
}

// memStore is a test-only in-memory storage.Store for pure unit tests; the
// file backend is used where the real thing matters (benchmarks, an
// end-to-end test). It passes the storage conformance suite
// (TestMemStoreConformance), so a unit test on it sees what a backend does:
// invalid keys refused, cancelled or failed Puts leaving nothing, listings
// in byte order.
type memStore struct {
	mu   sync.Mutex
	objs map[string]memObject
}

// memObject is a stored object. Its bytes are kept in the chunks they were
// read in, so a large Put never holds a second, reallocated copy.
type memObject struct {
	chunks [][]byte
	size   int64
	mod    time.Time
}

// memChunk is how much a Put reads at a time; ctx is checked between reads.
const memChunk = 1 << 20

func newMemStore() *memStore {
	return &memStore{objs: map[string]memObject{}}
}

// checkCall refuses an invalid key or a done context before any work.
func checkCall(ctx context.Context, op, key string) error {
	if err := storage.ValidateKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

func (m *memStore) Put(ctx context.Context, key string, r io.Reader) error {
	if err := checkCall(ctx, "put object", key); err != nil {
		return err
	}
	var o memObject
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("put object %s: %w", key, err)
		}
		buf := make([]byte, memChunk)
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			o.chunks = append(o.chunks, buf[:n:n])
			o.size += int64(n)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("put object %s: %w", key, err)
		}
	}
	o.mod = time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = o
	return nil
}

func (m *memStore) lookup(ctx context.Context, op, key string) (memObject, error) {
	if err := checkCall(ctx, op, key); err != nil {
		return memObject{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return memObject{}, fmt.Errorf("%s %s: %w", op, key, storage.ErrNotFound)
	}
	return o, nil
}

func (m *memStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	o, err := m.lookup(ctx, "get object", key)
	if err != nil {
		return nil, err
	}
	rs := make([]io.Reader, len(o.chunks))
	for i, c := range o.chunks {
		rs[i] = bytes.NewReader(c)
	}
	return io.NopCloser(io.MultiReader(rs...)), nil
}

func (m *memStore) Stat(ctx context.Context, key string) (storage.Info, error) {
	o, err := m.lookup(ctx, "stat object", key)
	if err != nil {
		return storage.Info{}, err
	}
	return storage.Info{Key: key, Size: o.size, ModTime: o.mod}, nil
}

func (m *memStore) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	m.mu.Lock()
	var infos []storage.Info
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.Info{Key: k, Size: o.size, ModTime: o.mod})
		}
	}
	m.mu.Unlock()
	sort.Slice(infos, func(a, b int) bool { return infos[a].Key < infos[b].Key })
	for _, i := range infos {
		if err := fn(i); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) Delete(ctx context.Context, key string) error {
	if _, err := m.lookup(ctx, "delete object", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

// Close drops every object.
func (m *memStore) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs = map[string]memObject{}
	return nil
}

// raw returns a copy of an object's bytes.
func (m *memStore) raw(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return bytes.Join(m.objs[key].chunks, nil)
}

func (m *memStore) set(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b = bytes.Clone(b)
	m.objs[key] = memObject{chunks: [][]byte{b}, size: int64(len(b)), mod: time.Now()}
}
