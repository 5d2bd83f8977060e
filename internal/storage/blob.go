package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"

	"github.com/rewind-backup/rewind/internal/redact"
	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// Upload buffers: parts of partSize, at most partConcurrency in flight, so
// a Put holds about 10 MiB whatever the object's size. 5 MiB is S3's
// smallest multipart part; with S3's 10,000-part limit it caps one object
// at about 50 GB, far above what the repository writes.
const (
	partSize        = 5 << 20
	partConcurrency = 2
)

// beforeWriteFunc is gocloud's WriterOptions.BeforeWrite hook.
type beforeWriteFunc = func(as func(any) bool) error

// blobStore is a Store over a gocloud.dev bucket (S3, GCS, Azure Blob).
type blobStore struct {
	b       *blob.Bucket
	client  io.Closer       // a client the bucket doesn't own, or nil
	before  beforeWriteFunc // adjusts a driver's writer, or nil
	name    string          // redacted URL, for errors
	secrets []string        // values scrubbed from every error message
	s3      *s3Bucket       // the raw S3 bucket under b, for Object Lock; nil on other clouds
}

// openBlob opens the bucket for u, checks that it exists and scopes it to
// the URL's path as a key prefix.
func openBlob(ctx context.Context, u *url.URL, opts Options) (Store, error) {
	name := redact.URL(u.String())
	secrets := append(redact.Secrets(u.String()), opts.secrets()...)
	secrets = append(secrets, envSecrets()...)
	prefix := strings.Trim(u.Path, "/")
	bu := *u
	bu.Path, bu.RawPath = "", ""
	var b *blob.Bucket
	var client io.Closer
	var before beforeWriteFunc
	var raw *s3Bucket
	var err error
	switch u.Scheme {
	case "s3":
		b, raw, before, err = openS3(ctx, &bu, opts)
	case "gs":
		b, client, err = openGCS(ctx, &bu, opts)
	case "azblob":
		b, err = openAzure(ctx, &bu, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("open repository %s: %s", name, redact.Scrub(err.Error(), secrets...))
	}
	s := &blobStore{b: b, client: client, before: before, name: name, secrets: secrets, s3: raw}
	if err := s.checkBucket(ctx, u.Host); err != nil {
		s.Close()
		return nil, err
	}
	if prefix != "" {
		if err := validatePrefix(prefix + "/"); err != nil {
			s.Close()
			return nil, fmt.Errorf("open repository %s: the path after the bucket: %w", name, err)
		}
		s.b = blob.PrefixedBucket(b, prefix+"/")
		if raw != nil {
			raw.prefix = prefix + "/"
		}
	}
	return s, nil
}

// checkBucket fails clearly when the bucket or container is missing: gocloud
// never creates one, and some drivers misbehave on a missing one (the
// azureblob writer panics).
func (s *blobStore) checkBucket(ctx context.Context, bucket string) error {
	ok, err := s.b.IsAccessible(ctx)
	if err != nil {
		return fmt.Errorf("open repository %s: check bucket %s: %s: check the endpoint and credentials", s.name, bucket, s.scrub(err))
	}
	if !ok {
		return fmt.Errorf("open repository %s: bucket %s does not exist or is not accessible: create it first", s.name, bucket)
	}
	return nil
}

func (s *blobStore) Put(ctx context.Context, key string, r io.Reader) error {
	return s.put(ctx, key, r, s.before)
}

// put is Put with before as the driver's writer hook.
func (s *blobStore) put(ctx context.Context, key string, r io.Reader, before beforeWriteFunc) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("put object: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put object %s: %w", key, err)
	}
	// Cancelling wctx before Close aborts the upload, so a failed Put
	// leaves no object (gocloud's documented way).
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.b.NewWriter(wctx, key, &blob.WriterOptions{
		BufferSize:                  partSize,
		MaxConcurrency:              partConcurrency,
		ContentType:                 "application/octet-stream",
		DisableContentTypeDetection: true,
		BeforeWrite:                 before,
	})
	if err != nil {
		return s.wrap("put object", key, err)
	}
	if _, err := io.Copy(w, ctxReader{ctx: ctx, r: r}); err != nil {
		cancel()
		_ = closeWriter(w) // the copy's error is the cause
		return s.wrap("put object", key, err)
	}
	if err := closeWriter(w); err != nil {
		return s.wrap("put object", key, err)
	}
	return nil
}

// closeWriter closes w, turning a driver panic into an error: the
// azureblob writer (v0.47.0) dereferences a nil pipe in Close whenever the
// upload failed, and a library bug must not take the agent down.
func closeWriter(w *blob.Writer) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("upload failed (the storage driver panicked: %v)", p)
		}
	}()
	return w.Close()
}

func (s *blobStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get object: %w", err)
	}
	r, err := s.b.NewReader(ctx, key, nil)
	if err != nil {
		return nil, s.wrap("get object", key, err)
	}
	return r, nil
}

func (s *blobStore) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat object: %w", err)
	}
	a, err := s.b.Attributes(ctx, key)
	if err != nil {
		return Info{}, s.wrap("stat object", key, err)
	}
	return Info{Key: key, Size: a.Size, ModTime: a.ModTime}, nil
}

func (s *blobStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete object: %w", err)
	}
	if err := s.b.Delete(ctx, key); err != nil {
		return s.wrap("delete object", key, err)
	}
	return nil
}

// List reads the whole listing, then sorts it: not every backend lists in
// byte order of the keys the Store sees (Azure sorts the escaped names
// gocloud stores for "%", "#" and "?"; S3-compatible servers on a file
// system walk directories, where "a/b" comes before "a-c"). The listing is
// held in memory, about 100 bytes per object: keep prefixes narrow.
func (s *blobStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	var all []Info
	it := s.b.List(&blob.ListOptions{Prefix: prefix})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return s.wrap("list objects", prefix, err)
		}
		if obj.IsDir {
			continue
		}
		all = append(all, Info{Key: obj.Key, Size: obj.Size, ModTime: obj.ModTime})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Key < all[j].Key })
	for _, info := range all {
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}

func (s *blobStore) Close() error {
	err := s.b.Close()
	if s.client != nil {
		if cerr := s.client.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("close repository %s: %s", s.name, s.scrub(err))
	}
	return nil
}

// wrap turns a gocloud error into "verb key: detail", with ErrNotFound for a
// missing object and every known secret removed from the text.
func (s *blobStore) wrap(verb, key string, err error) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return fmt.Errorf("%s %s: %w", verb, key, ErrNotFound)
	}
	return &scrubbedError{msg: fmt.Sprintf("%s %s: %s", verb, key, s.scrub(err)), err: err}
}

func (s *blobStore) scrub(err error) string {
	return compact(redact.Scrub(err.Error(), s.secrets...))
}

// scrubbedError shows a message with secrets removed while keeping the
// original error for errors.Is (context.Canceled and the like).
type scrubbedError struct {
	msg string
	err error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.err }

// compact turns a multi-line SDK error (Azure's carry the response body)
// into one line: the lines before the first separator or XML body.
func compact(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var keep []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "<") {
			break
		}
		if line == "" || strings.HasPrefix(line, "---") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, " ")
}
