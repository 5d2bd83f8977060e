package oplog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Spool is a local directory of batches waiting for upload. Every batch goes
// through it, so a batch read from the source is on local disk (fsynced)
// before the source is read further, and storage being down only makes the
// spool grow. Files are named so that a sorted listing is upload order.
type Spool struct {
	dir      string
	maxBytes int64

	mu    sync.Mutex
	bytes int64
	// uploaded holds batches stored in the repository whose file could
	// not be removed (a read-only spool): they are skipped, and their
	// removal retried, so uploads go on past them.
	uploaded map[string]bool
	// freed is signalled when an upload shrinks the spool.
	freed chan struct{}
}

const spoolExt = ".bson"

// OpenSpool opens (creating) the spool directory and counts what it holds.
func OpenSpool(dir string, maxBytes int64) (*Spool, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create spool %s: %w", dir, storage.DiskError(dir, err))
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, uploaded: map[string]bool{}, freed: make(chan struct{}, 1)}
	names, err := s.list()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		if fi, err := os.Stat(filepath.Join(dir, n)); err == nil {
			s.bytes += fi.Size()
		}
	}
	return s, nil
}

// Bytes is how much the spool holds now.
func (s *Spool) Bytes() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

// Full reports whether adding n bytes would pass the bound.
func (s *Spool) Full(n int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes > 0 && s.bytes+int64(n) > s.maxBytes
}

// WaitFreed blocks until an upload removes something or ctx ends.
func (s *Spool) WaitFreed(ctx context.Context) error {
	select {
	case <-s.freed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dir is the spool's directory.
func (s *Spool) Dir() string { return s.dir }

// Put writes b durably: temp file, fsync, rename, fsync of the directory.
// On error nothing is left behind (the temp file is removed) and the error
// names the directory, and what to do when its filesystem is full or
// read-only.
func (s *Spool) Put(b Batch) error {
	if err := s.put(b); err != nil {
		return fmt.Errorf("write spool %s: %w", s.dir, storage.DiskError(s.dir, err))
	}
	return nil
}

func (s *Spool) put(b Batch) error {
	tmp, err := os.CreateTemp(s.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	for _, e := range b.Entries {
		if _, err := tmp.Write(e); err != nil {
			tmp.Close()
			return err
		}
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(s.dir, spoolName(b))); err != nil {
		return err
	}
	if err := syncDir(s.dir); err != nil {
		return err
	}
	s.mu.Lock()
	s.bytes += int64(b.Bytes)
	s.mu.Unlock()
	return nil
}

// Oldest returns the first batch waiting for upload, or ok=false when there
// is none. Batches uploaded but not removed are skipped (their removal is
// retried first).
func (s *Spool) Oldest() (b Batch, name string, ok bool, err error) {
	s.retryRemovals()
	names, err := s.list()
	if err != nil {
		return b, "", false, err
	}
	s.mu.Lock()
	names = slices.DeleteFunc(names, func(n string) bool { return s.uploaded[n] })
	s.mu.Unlock()
	if len(names) == 0 {
		return b, "", false, nil
	}
	b, err = s.read(names[0])
	return b, names[0], err == nil, err
}

// Newest returns the last batch waiting, for the resume point.
func (s *Spool) Newest() (b Batch, ok bool, err error) {
	names, err := s.list()
	if err != nil || len(names) == 0 {
		return b, false, err
	}
	b, err = s.read(names[len(names)-1])
	return b, err == nil, err
}

// Remove drops an uploaded batch. When its file cannot be removed (a
// read-only spool), the batch is marked uploaded: Oldest skips it and
// retries the removal, and the error says so.
func (s *Spool) Remove(name string) error {
	p := filepath.Join(s.dir, name)
	fi, err := os.Stat(p)
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil {
		s.mu.Lock()
		s.uploaded[name] = true
		s.mu.Unlock()
		return fmt.Errorf("remove uploaded batch %s from the spool (skipped, removal retried): %w", name, storage.DiskError(s.dir, err))
	}
	s.freedBytes(name, fi.Size())
	return nil
}

// retryRemovals removes the files of batches marked uploaded, where it can.
func (s *Spool) retryRemovals() {
	s.mu.Lock()
	names := slices.Collect(maps.Keys(s.uploaded))
	s.mu.Unlock()
	for _, n := range names {
		p := filepath.Join(s.dir, n)
		fi, err := os.Stat(p)
		if err == nil {
			err = os.Remove(p)
		}
		switch {
		case err == nil:
			s.freedBytes(n, fi.Size())
		case errors.Is(err, fs.ErrNotExist):
			s.freedBytes(n, 0) // removed by hand
		}
	}
}

// freedBytes accounts for the removal of name's size bytes.
func (s *Spool) freedBytes(name string, size int64) {
	s.mu.Lock()
	delete(s.uploaded, name)
	s.bytes -= size
	s.mu.Unlock()
	select {
	case s.freed <- struct{}{}:
	default:
	}
}

// spoolName orders batches by their first timestamp; the previous batch's
// last timestamp and the timeline ride along.
func spoolName(b Batch) string {
	return b.First.Key() + "_" + b.Last.Key() + "_" + b.Prev.Key() + "_" + b.Timeline + spoolExt
}

func (s *Spool) list() ([]string, error) {
	ents, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("list spool %s: %w", s.dir, err)
	}
	var names []string
	for _, e := range ents {
		if !e.IsDir() && strings.HasSuffix(e.Name(), spoolExt) && !strings.HasPrefix(e.Name(), ".") {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	return names, nil
}

func (s *Spool) read(name string) (Batch, error) {
	parts := strings.SplitN(strings.TrimSuffix(name, spoolExt), "_", 4)
	if len(parts) != 4 {
		return Batch{}, fmt.Errorf("spool file %s: unexpected name", name)
	}
	prev, err := optime.ParseKey(parts[2])
	if err != nil {
		return Batch{}, fmt.Errorf("spool file %s: %w", name, err)
	}
	data, err := os.ReadFile(filepath.Join(s.dir, name))
	if err != nil {
		return Batch{}, fmt.Errorf("read spool file %s: %w", name, err)
	}
	entries, err := splitDocs(data)
	if err != nil {
		return Batch{}, fmt.Errorf("spool file %s is damaged (%w): remove it; the agent will read those entries from the source again if they are still there", name, err)
	}
	return newBatchFromEntries(parts[3], prev, entries)
}

// splitDocs cuts concatenated BSON documents apart, validating each.
func splitDocs(data []byte) ([]bson.Raw, error) {
	var out []bson.Raw
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		doc, err := bson.ReadDocument(r)
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		out = append(out, doc)
	}
	return out, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
