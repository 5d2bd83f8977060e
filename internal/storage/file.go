package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// fileStore keeps each object as one file under root; key segments are
// directories.
//
// It is a small native implementation rather than gocloud's fileblob because
// a backup must survive a power cut: fileblob renames its temp file into
// place without fsyncing the file or the directory, so after a crash an
// object it reported as written can be empty or missing. Here every Put
// writes a temp file in the target directory, fsyncs it, renames it over
// the key and fsyncs the directory. fileblob also keeps ".attrs" side files
// and lists in its own order; this store has neither.
//
// A key cannot be both an object and the directory of other keys ("a" and
// "a/b"): the repository format never produces that.
type fileStore struct {
	root string
}

const (
	dirPerm = 0o700 // backups hold user data: owner only
)

// openFile opens the directory root as a store. A root that does not
// exist yet is created by the first write (rewind init's), never by
// opening: a mistyped --repo given to a command that only reads must not
// leave directories behind.
func openFile(root string) (*fileStore, error) {
	if !filepath.IsAbs(root) {
		abs, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("resolve repository path %q: %w", root, err)
		}
		root = abs
	}
	root = filepath.Clean(root)
	st, err := os.Stat(root)
	if errors.Is(err, fs.ErrNotExist) {
		return &fileStore{root: root}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("stat repository directory %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("repository path %s is a file, not a directory: give a directory", root)
	}
	return &fileStore{root: root}, nil
}

func (s *fileStore) path(key string) string {
	return filepath.Join(s.root, filepath.FromSlash(key))
}

func (s *fileStore) Put(ctx context.Context, key string, r io.Reader) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put object %s: %w", key, err)
	}
	dst := s.path(key)
	f, err := s.createTemp(filepath.Dir(dst))
	if err != nil {
		return fmt.Errorf("put object %s: %w", key, DiskError(s.root, err))
	}
	tmp := f.Name()
	err = writeSynced(ctx, f, r)
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = syncDir(filepath.Dir(dst))
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("put object %s: %w", key, DiskError(s.root, err))
	}
	return nil
}

// DiskError adds to err, from writing under dir on a local filesystem,
// what to do when that filesystem is full (ENOSPC, EDQUOT) or read-only
// (EROFS); other errors come back unchanged. The file repository and the
// agent's spool use it, so both name the path and the remedy alike.
func DiskError(dir string, err error) error {
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w (the filesystem holding %s is full: free space on it)", err, dir)
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%w (the filesystem holding %s is mounted read-only: remount it read-write)", err, dir)
	}
	return err
}

// createTemp creates a temp file in dir, creating dir as needed. A
// concurrent Delete may remove an empty dir between makeDirs and
// CreateTemp, so that race is retried.
func (s *fileStore) createTemp(dir string) (*os.File, error) {
	var err error
	for range 5 {
		if err = s.makeDirs(dir); err != nil {
			return nil, fmt.Errorf("create directory: %w", err)
		}
		var f *os.File
		f, err = os.CreateTemp(dir, tempPrefix+"*")
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			break
		}
	}
	return nil, fmt.Errorf("create temp file: %w", err)
}

// makeDirs creates dir and its missing parents under the root, fsyncing
// each parent so the new entries survive a crash along with the object.
func (s *fileStore) makeDirs(dir string) error {
	if dir == s.root {
		if err := os.MkdirAll(s.root, dirPerm); err != nil {
			return fmt.Errorf("create repository directory %s: %w", s.root, err)
		}
		return nil
	}
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return nil
	}
	parent := filepath.Dir(dir)
	if err := s.makeDirs(parent); err != nil {
		return err
	}
	if err := os.Mkdir(dir, dirPerm); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return syncDir(parent)
}

// writeSynced copies r into f, makes it durable and closes f.
func writeSynced(ctx context.Context, f *os.File, r io.Reader) error {
	_, err := io.Copy(f, ctxReader{ctx: ctx, r: r})
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	return nil
}

func (s *fileStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get object: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("get object %s: %w", key, err)
	}
	f, err := os.Open(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("get object %s: %w", key, fileErr(err))
	}
	st, err := f.Stat()
	if err == nil && st.IsDir() {
		err = ErrNotFound
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("get object %s: %w", key, err)
	}
	return f, nil
}

func (s *fileStore) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat object: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("stat object %s: %w", key, err)
	}
	st, err := os.Stat(s.path(key))
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err != nil {
		return Info{}, fmt.Errorf("stat object %s: %w", key, fileErr(err))
	}
	return Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}, nil
}

func (s *fileStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete object: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("delete object %s: %w", key, err)
	}
	p := s.path(key)
	st, err := os.Lstat(p)
	if err == nil && !st.Mode().IsRegular() {
		err = ErrNotFound
	}
	if err == nil {
		err = os.Remove(p)
	}
	if err != nil {
		return fmt.Errorf("delete object %s: %w", key, fileErr(err))
	}
	s.removeEmptyDirs(filepath.Dir(p))
	return nil
}

// removeEmptyDirs removes dir and its parents up to the root while they are
// empty, so deleted prefixes leave nothing behind. Failure (a directory that
// is not empty, or a concurrent Put) just stops it.
func (s *fileStore) removeEmptyDirs(dir string) {
	for dir != s.root && strings.HasPrefix(dir, s.root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// List walks only the directory that holds the prefix's last segment and
// visits entries in key order: an object's key is its name, a directory's
// keys all start with its name and "/", so sorting entries by that string
// and recursing yields every key in ascending byte order without holding
// more than one directory's entries per level.
func (s *fileStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	dirKey, namePrefix := "", prefix
	if i := strings.LastIndex(prefix, "/"); i >= 0 {
		dirKey, namePrefix = prefix[:i+1], prefix[i+1:]
	}
	err := s.listDir(ctx, dirKey, namePrefix, fn)
	var stop callbackError
	if errors.As(err, &stop) {
		return stop.err
	}
	if err != nil {
		return fmt.Errorf("list objects %q: %w", prefix, err)
	}
	return nil
}

// callbackError carries an error from List's callback out unchanged.
type callbackError struct{ err error }

func (e callbackError) Error() string { return e.err.Error() }

type dirEntry struct {
	sortKey string
	name    string
	isDir   bool
}

// listDir lists the directory for dirKey ("" or ending in "/"), keeping
// entries whose name starts with namePrefix.
func (s *fileStore) listDir(ctx context.Context, dirKey, namePrefix string, fn func(Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := s.root
	if dirKey != "" {
		dir = s.path(strings.TrimSuffix(dirKey, "/"))
	}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return nil // nothing under this prefix
	}
	if err != nil {
		return err
	}
	list := make([]dirEntry, 0, len(ents))
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, namePrefix) || strings.HasPrefix(name, tempPrefix) {
			continue
		}
		if e.IsDir() {
			list = append(list, dirEntry{sortKey: name + "/", name: name, isDir: true})
		} else if e.Type().IsRegular() {
			list = append(list, dirEntry{sortKey: name, name: name})
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].sortKey < list[j].sortKey })
	for _, e := range list {
		if e.isDir {
			if err := s.listDir(ctx, dirKey+e.name+"/", "", fn); err != nil {
				return err
			}
			continue
		}
		if err := s.visit(dirKey+e.name, fn); err != nil {
			return err
		}
	}
	return nil
}

func (s *fileStore) visit(key string, fn func(Info) error) error {
	st, err := os.Stat(s.path(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil // deleted while listing
	}
	if err != nil {
		return err
	}
	if err := fn(Info{Key: key, Size: st.Size(), ModTime: st.ModTime()}); err != nil {
		return callbackError{err}
	}
	return nil
}

func (s *fileStore) Close() error { return nil }

// fileErr maps "no such file" (and a path segment that is a file) to
// ErrNotFound.
func fileErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%w (%v)", ErrNotFound, err)
	}
	return err
}

// ctxReader stops a copy once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
