package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// memStore is a test-only in-memory storage.Store for pure unit tests; the
// file backend is used where the real thing matters (benchmarks, an
// end-to-end test).
type memStore struct {
	mu   sync.Mutex
	objs map[string][]byte
	mod  map[string]time.Time
}

func newMemStore() *memStore {
	return &memStore{objs: map[string][]byte{}, mod: map[string]time.Time{}}
}

func (m *memStore) Put(_ context.Context, key string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	m.mod[key] = time.Now()
	return nil
}

func (m *memStore) Get(_ context.Context, key string) (io.ReadCloser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("get %s: %w", key, storage.ErrNotFound)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

func (m *memStore) Stat(_ context.Context, key string) (storage.Info, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.objs[key]
	if !ok {
		return storage.Info{}, fmt.Errorf("stat %s: %w", key, storage.ErrNotFound)
	}
	return storage.Info{Key: key, Size: int64(len(b)), ModTime: m.mod[key]}, nil
}

func (m *memStore) List(_ context.Context, prefix string, fn func(storage.Info) error) error {
	m.mu.Lock()
	var infos []storage.Info
	for k, b := range m.objs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, storage.Info{Key: k, Size: int64(len(b)), ModTime: m.mod[k]})
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

func (m *memStore) Delete(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; !ok {
		return fmt.Errorf("delete %s: %w", key, storage.ErrNotFound)
	}
	delete(m.objs, key)
	return nil
}

func (m *memStore) Close() error { return nil }

// raw returns a copy of an object's bytes.
func (m *memStore) raw(key string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]byte(nil), m.objs[key]...)
}

func (m *memStore) set(key string, b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = b
	m.mod[key] = time.Now()
}
