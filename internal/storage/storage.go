// Package storage is the object-store abstraction under a rewind repository.
//
// A Store saves, loads, lists, stats and removes named objects, nothing more:
// it knows nothing of the backup format (package repo decides object names and
// contents). Every method takes a context so a stuck upload can be cancelled.
package storage

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotFound is returned (wrapped) when an object does not exist.
// Test with errors.Is(err, storage.ErrNotFound).
var ErrNotFound = errors.New("object not found")

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Store is a flat namespace of objects addressed by keys. Keys use "/" as a
// separator and never start with "/".
type Store interface {
	// Put stores the whole of r under key, replacing any existing object.
	// The object becomes visible whole or not at all: a reader never sees a
	// partial object, even if Put is cancelled or the process dies.
	// r is streamed: Put never holds the whole object in memory.
	Put(ctx context.Context, key string, r io.Reader) error
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// Stat returns the object's size and modification time.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every object whose key starts with prefix, in
	// ascending byte order of keys. An error from fn stops the listing and is
	// returned.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes the object. Deleting a missing object returns ErrNotFound.
	Delete(ctx context.Context, key string) error
	// Close releases the store's resources.
	Close() error
}
