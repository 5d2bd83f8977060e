package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Object Lock retention modes (S3's names). In COMPLIANCE mode nobody, the
// bucket's owner and the repository's own credentials included, can
// shorten the retention or delete the object version before it ends; in
// GOVERNANCE mode a principal with s3:BypassGovernanceRetention can.
const (
	LockCompliance = "COMPLIANCE"
	LockGovernance = "GOVERNANCE"
)

// MaxLockDays caps ObjectLock.Days at 100 years: a longer value is a typo.
const MaxLockDays = 36500

// ErrObjectLockUnsupported is returned (wrapped) when a store cannot lock
// objects: file://, GCS and Azure in this build, and an S3 bucket created
// without Object Lock.
var ErrObjectLockUnsupported = errors.New("object lock unsupported")

// ErrRetained is returned (wrapped, as a *RetainedError) by Delete on an
// object whose retention has not ended.
var ErrRetained = errors.New("object under object lock retention")

// ObjectLock is the retention every object is written with: Mode (LockCompliance
// or LockGovernance) for Days days (1 to MaxLockDays) after its Put.
type ObjectLock struct {
	Mode string
	Days int
}

// Validate checks the mode and the number of days.
func (l ObjectLock) Validate() error {
	if l.Mode != LockCompliance && l.Mode != LockGovernance {
		return fmt.Errorf("object lock mode %q: want %s or %s", l.Mode, LockCompliance, LockGovernance)
	}
	if l.Days < 1 || l.Days > MaxLockDays {
		return fmt.Errorf("object lock of %d days: want 1 to %d days", l.Days, MaxLockDays)
	}
	return nil
}

var errNotS3 = fmt.Errorf("this store has no object lock (rewind supports it on S3 buckets only, not on file://, gs:// or azblob://): %w", ErrObjectLockUnsupported)

// RetainedError names an object Delete left alone and when its retention
// ends. errors.Is(err, ErrRetained) holds.
type RetainedError struct {
	Key   string
	Until time.Time
}

func (e *RetainedError) Error() string {
	return fmt.Sprintf("object %s is retained by object lock until %s", e.Key, e.Until.UTC().Format(time.RFC3339))
}

// Is makes errors.Is(err, ErrRetained) true.
func (e *RetainedError) Is(target error) bool { return target == ErrRetained }

// s3Bucket is the raw S3 bucket under a blobStore: Object Lock and object
// versions are beyond gocloud's API. prefix is the repository's key prefix
// ("" or ending in "/"); key gives the S3 key of a store key.
type s3Bucket struct {
	client *s3.Client
	bucket string
	prefix string
}

// key is the S3 key gocloud's writer stores key under.
func (b *s3Bucket) key(key string) *string { return aws.String(s3Escape(b.prefix + key)) }

func s3of(st Store) (*blobStore, bool) {
	for {
		switch s := st.(type) {
		case counted:
			st = s.Store
		case *lockedStore:
			return s.blobStore, true
		case *blobStore:
			return s, s.s3 != nil
		default:
			return nil, false
		}
	}
}

// CheckObjectLock returns nil when st's bucket has Object Lock and
// versioning enabled; otherwise an error wrapping ErrObjectLockUnsupported
// that says how to get a bucket that has them, or the error reaching the
// bucket.
func CheckObjectLock(ctx context.Context, st Store) error {
	b, ok := s3of(st)
	if !ok {
		return errNotS3
	}
	const how = "create a bucket with Object Lock enabled (it also enables versioning), e.g. `aws s3api create-bucket --bucket NAME --object-lock-enabled-for-bucket`, and use it"
	out, err := b.s3.client.GetObjectLockConfiguration(ctx, &s3.GetObjectLockConfigurationInput{Bucket: aws.String(b.s3.bucket)})
	var api smithy.APIError
	switch {
	case errors.As(err, &api) && api.ErrorCode() == "ObjectLockConfigurationNotFoundError":
		return fmt.Errorf("bucket %s has no Object Lock: %s: %w", b.s3.bucket, how, ErrObjectLockUnsupported)
	case err != nil:
		return fmt.Errorf("check object lock of bucket %s: %s", b.s3.bucket, b.scrub(err))
	case out.ObjectLockConfiguration == nil || out.ObjectLockConfiguration.ObjectLockEnabled != s3types.ObjectLockEnabledEnabled:
		return fmt.Errorf("bucket %s has no Object Lock: %s: %w", b.s3.bucket, how, ErrObjectLockUnsupported)
	}
	v, err := b.s3.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.s3.bucket)})
	if err != nil {
		return fmt.Errorf("check versioning of bucket %s: %s", b.s3.bucket, b.scrub(err))
	}
	if v.Status != s3types.BucketVersioningStatusEnabled {
		return fmt.Errorf("bucket %s has Object Lock but versioning is %q: enable versioning on it: %w", b.s3.bucket, v.Status, ErrObjectLockUnsupported)
	}
	return nil
}

// WithObjectLock returns a store over st's S3 bucket that writes every
// object for which mutable(key) is false under lock's retention, and reads
// each such object's oldest stored version, however many delete markers
// or newer versions were put over it:
//
//   - Put gives the new version a retention until now + lock.Days.
//   - Get and Stat read the oldest version that holds data. A key is
//     written once by rewind, so that version is the one rewind wrote; a
//     later overwrite (a new version) or delete (a delete marker) by
//     anyone holding the credentials cannot change what is read.
//   - List shows a key while any version of it holds data.
//   - Delete removes every version and delete marker of the key, or, while
//     a version's retention has not ended, nothing: it returns a
//     *RetainedError without sending a delete S3 would refuse.
//
// Keys for which mutable(key) is true (locks, heartbeats) are written
// without retention and read as usual (the newest version); Put and Delete
// also remove their older versions so they do not pile up. st must be
// opened on S3; otherwise the error wraps ErrObjectLockUnsupported.
// WithObjectLock sends no request: CheckObjectLock checks the bucket.
func WithObjectLock(st Store, lock ObjectLock, mutable func(key string) bool) (Store, error) {
	if err := lock.Validate(); err != nil {
		return nil, err
	}
	b, ok := s3of(st)
	if !ok {
		return nil, errNotS3
	}
	return counted{&lockedStore{blobStore: b, lock: lock, mutable: mutable}}, nil
}

// lockedStore is the Store WithObjectLock returns.
type lockedStore struct {
	*blobStore
	lock    ObjectLock
	mutable func(key string) bool

	// oldest caches the version id Get reads for retained keys, from List
	// and earlier reads: a restore lists its segments, then reads each
	// with one request instead of two. An entry never changes while the
	// version exists; Delete drops it, and a Get of a version deleted
	// meanwhile (by another process) looks it up again.
	mu     sync.Mutex
	oldest map[string]string
}

// maxCached bounds lockedStore.oldest (about 100 bytes an entry).
const maxCached = 1 << 20

func (s *lockedStore) cached(key string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.oldest[key]
	return id, ok
}

// remember records the version Get reads for key; "" forgets it.
func (s *lockedStore) remember(key, id string) {
	if s.mutable(key) {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case id == "":
		delete(s.oldest, key)
	case s.oldest == nil || len(s.oldest) >= maxCached:
		s.oldest = map[string]string{key: id}
	default:
		s.oldest[key] = id
	}
}

// version is one version or delete marker of a key, as S3 lists them.
type version struct {
	id      string
	marker  bool
	latest  bool
	size    int64
	modTime time.Time
}

func (s *lockedStore) Put(ctx context.Context, key string, r io.Reader) error {
	if s.mutable(key) {
		if err := s.put(ctx, key, r, s.before); err != nil {
			return err
		}
		return s.dropOlder(ctx, key)
	}
	until := time.Now().Add(time.Duration(s.lock.Days) * 24 * time.Hour).UTC()
	retain := func(as func(any) bool) error {
		if s.before != nil {
			if err := s.before(as); err != nil {
				return err
			}
		}
		var in *transfermanager.UploadObjectInput
		if as(&in) && in != nil {
			in.ObjectLockMode = tmtypes.ObjectLockMode(s.lock.Mode)
			in.ObjectLockRetainUntilDate = &until
		}
		return nil
	}
	return s.put(ctx, key, r, retain)
}

// pick returns the version a reader sees: the oldest holding data for a
// retained key, the newest (unless a delete marker) for a mutable one.
func (s *lockedStore) pick(key string, vs []version) (version, bool) {
	if s.mutable(key) {
		for _, v := range vs {
			if v.latest {
				return v, !v.marker
			}
		}
		return version{}, false
	}
	for i := len(vs) - 1; i >= 0; i-- { // vs is newest first
		if !vs[i].marker {
			return vs[i], true
		}
	}
	return version{}, false
}

func (s *lockedStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ValidateKey(key); err != nil {
		return nil, fmt.Errorf("get object: %w", err)
	}
	if id, ok := s.cached(key); ok {
		rc, err := s.getVersion(ctx, key, id)
		if !errors.Is(err, ErrNotFound) {
			return rc, err
		}
		s.remember(key, "") // deleted meanwhile: look again
	}
	v, err := s.find(ctx, "get object", key)
	if err != nil {
		return nil, err
	}
	return s.getVersion(ctx, key, v.id)
}

func (s *lockedStore) getVersion(ctx context.Context, key, id string) (io.ReadCloser, error) {
	out, err := s.s3.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.s3.bucket),
		Key: s.s3.key(key), VersionId: aws.String(id)})
	if err != nil {
		return nil, s.wrapS3("get object", key, err)
	}
	return out.Body, nil
}

func (s *lockedStore) Stat(ctx context.Context, key string) (Info, error) {
	if err := ValidateKey(key); err != nil {
		return Info{}, fmt.Errorf("stat object: %w", err)
	}
	v, err := s.find(ctx, "stat object", key)
	if err != nil {
		return Info{}, err
	}
	return Info{Key: key, Size: v.size, ModTime: v.modTime}, nil
}

// find returns the version of key a reader sees, or ErrNotFound.
func (s *lockedStore) find(ctx context.Context, verb, key string) (version, error) {
	all, err := s.versions(ctx, key)
	if err != nil {
		return version{}, s.wrapS3(verb, key, err)
	}
	v, ok := s.pick(key, all[key])
	if !ok {
		return version{}, fmt.Errorf("%s %s: %w", verb, key, ErrNotFound)
	}
	s.remember(key, v.id)
	return v, nil
}

func (s *lockedStore) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := validatePrefix(prefix); err != nil {
		return fmt.Errorf("list objects: %w", err)
	}
	all, err := s.versions(ctx, prefix)
	if err != nil {
		return s.wrapS3("list objects", prefix, err)
	}
	keys := make([]string, 0, len(all))
	for k := range all {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if v, ok := s.pick(k, all[k]); ok {
			s.remember(k, v.id)
			if err := fn(Info{Key: k, Size: v.size, ModTime: v.modTime}); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *lockedStore) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("delete object: %w", err)
	}
	all, err := s.versions(ctx, key)
	if err != nil {
		return s.wrapS3("delete object", key, err)
	}
	vs := all[key]
	if _, ok := s.pick(key, vs); !ok {
		return fmt.Errorf("delete object %s: %w", key, ErrNotFound)
	}
	if !s.mutable(key) {
		if err := s.checkRetention(ctx, key, vs); err != nil {
			return err
		}
	}
	s.remember(key, "")
	return s.deleteVersions(ctx, key, vs)
}

// checkRetention returns a *RetainedError if a version of key that holds
// data is retained past now.
func (s *lockedStore) checkRetention(ctx context.Context, key string, vs []version) error {
	now := time.Now()
	for _, v := range vs {
		if v.marker {
			continue
		}
		out, err := s.s3.client.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(s.s3.bucket),
			Key: s.s3.key(key), VersionId: aws.String(v.id)})
		var api smithy.APIError
		if errors.As(err, &api) && api.ErrorCode() == "NoSuchObjectLockConfiguration" {
			continue // written without a retention
		}
		if err != nil {
			return s.wrapS3("delete object", key, err)
		}
		if u := out.Retention; u != nil && u.RetainUntilDate != nil && u.RetainUntilDate.After(now) {
			return fmt.Errorf("delete object %s: %w", key, &RetainedError{Key: key, Until: *u.RetainUntilDate})
		}
	}
	return nil
}

// deleteVersions removes the given versions and delete markers of key.
func (s *lockedStore) deleteVersions(ctx context.Context, key string, vs []version) error {
	for _, v := range vs {
		_, err := s.s3.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.s3.bucket),
			Key: s.s3.key(key), VersionId: aws.String(v.id)})
		if err != nil && !errors.Is(s.wrapS3("", key, err), ErrNotFound) {
			return s.wrapS3("delete object", key, err)
		}
	}
	return nil
}

// dropOlder removes the versions of a mutable key older than its newest,
// so that a key rewritten every few seconds (a lock) keeps one version.
func (s *lockedStore) dropOlder(ctx context.Context, key string) error {
	all, err := s.versions(ctx, key)
	if err != nil {
		return s.wrapS3("put object", key, err)
	}
	for _, v := range all[key] {
		if !v.latest {
			// Best effort: a concurrent Put of the key may have removed
			// it already; what is left is removed by the next Put.
			_, _ = s.s3.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.s3.bucket),
				Key: s.s3.key(key), VersionId: aws.String(v.id)})
		}
	}
	return nil
}

// versions lists every version and delete marker under prefix, by key,
// newest first (S3 lists each key's versions newest first; markers are
// merged in by time).
func (s *lockedStore) versions(ctx context.Context, prefix string) (map[string][]version, error) {
	all := map[string][]version{}
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(s.s3.bucket), Prefix: s.s3.key(prefix)}
	for {
		out, err := s.s3.client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, v := range out.Versions {
			k, ok := strings.CutPrefix(s3Unescape(aws.ToString(v.Key)), s.s3.prefix)
			if ok {
				all[k] = append(all[k], version{id: aws.ToString(v.VersionId), latest: aws.ToBool(v.IsLatest),
					size: aws.ToInt64(v.Size), modTime: aws.ToTime(v.LastModified)})
			}
		}
		for _, m := range out.DeleteMarkers {
			k, ok := strings.CutPrefix(s3Unescape(aws.ToString(m.Key)), s.s3.prefix)
			if ok {
				all[k] = append(all[k], version{id: aws.ToString(m.VersionId), marker: true,
					latest: aws.ToBool(m.IsLatest), modTime: aws.ToTime(m.LastModified)})
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	for _, vs := range all {
		sort.SliceStable(vs, func(i, j int) bool {
			if vs[i].latest != vs[j].latest {
				return vs[i].latest
			}
			return vs[i].modTime.After(vs[j].modTime)
		})
	}
	return all, nil
}

// wrapS3 is wrap for errors of the raw S3 client.
func (s *lockedStore) wrapS3(verb, key string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		switch api.ErrorCode() {
		case "NoSuchKey", "NoSuchVersion", "NotFound":
			return fmt.Errorf("%s %s: %w", verb, key, ErrNotFound)
		}
	}
	return &scrubbedError{msg: fmt.Sprintf("%s %s: %s", verb, key, s.scrub(err)), err: err}
}

// Oldest returns a view of st for reading objects written once: on S3,
// Get reads a key's oldest version that holds data, past any delete marker
// or newer version (what a locked store reads), and falls back to the
// newest version where the bucket lists no versions; elsewhere st itself.
// The repository reads its config through it, before it knows whether
// the repository is locked.
func Oldest(st Store) Store {
	b, ok := s3of(st)
	if !ok {
		return st
	}
	return oldestStore{Store: st, locked: &lockedStore{blobStore: b, mutable: func(string) bool { return false }}}
}

type oldestStore struct {
	Store
	locked *lockedStore
}

func (s oldestStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	rc, err := s.locked.Get(ctx, key)
	if err == nil || errors.Is(err, ErrNotFound) {
		return rc, err
	}
	return s.Store.Get(ctx, key)
}
