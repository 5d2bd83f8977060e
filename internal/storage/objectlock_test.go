package storage_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

func isLockKey(key string) bool { return strings.HasPrefix(key, "locks/") }

// TestObjectLockS3 writes through a locked store and attacks its objects
// with the same credentials: a delete of the locked version is refused, a
// delete marker and an overwrite leave what the store reads unchanged, and
// the store's own Delete says until when the object is retained.
func TestObjectLockS3(t *testing.T) {
	srv := storagetest.StartS3Locked(t)
	ctx := t.Context()
	st, err := storage.OpenWith(ctx, srv.BucketURL(srv.Bucket, "repo"), srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := storage.CheckObjectLock(ctx, st); err != nil {
		t.Fatalf("CheckObjectLock on a bucket with Object Lock: %v", err)
	}
	ls, err := storage.WithObjectLock(st, storage.ObjectLock{Mode: storage.LockCompliance, Days: 1}, isLockKey)
	if err != nil {
		t.Fatal(err)
	}
	put(t, ls, "oplog/a", "original")
	put(t, ls, "locks/x", "first")
	put(t, ls, "locks/x", "second")

	cl := srv.Client()
	key := aws.String("repo/oplog/a")
	vs, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(srv.Bucket), Prefix: key})
	if err != nil || len(vs.Versions) != 1 {
		t.Fatalf("versions of oplog/a: %v, %v", vs, err)
	}
	id := vs.Versions[0].VersionId
	ret, err := cl.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(srv.Bucket), Key: key, VersionId: id})
	if err != nil {
		t.Fatalf("get retention: %v", err)
	}
	if ret.Retention.Mode != "COMPLIANCE" || time.Until(*ret.Retention.RetainUntilDate) < 23*time.Hour {
		t.Fatalf("retention %s until %v, want COMPLIANCE for a day", ret.Retention.Mode, ret.Retention.RetainUntilDate)
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: key, VersionId: id}); err == nil {
		t.Fatal("the locked version was deleted with the repository's credentials")
	}
	if _, err := cl.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(srv.Bucket), Key: key, VersionId: id,
		Retention: &s3types.ObjectLockRetention{Mode: "COMPLIANCE", RetainUntilDate: aws.Time(time.Now().Add(time.Minute))}}); err == nil {
		t.Fatal("the retention of a COMPLIANCE version was shortened")
	}
	if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: key}); err != nil {
		t.Fatalf("delete marker: %v", err)
	}
	if got := get(t, ls, "oplog/a"); got != "original" {
		t.Fatalf("after a delete marker: read %q, want the locked version", got)
	}
	_, err = cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: key, Body: strings.NewReader("forged!!")})
	if err != nil {
		t.Fatalf("overwrite: %v", err)
	}
	if got := get(t, ls, "oplog/a"); got != "original" {
		t.Fatalf("after an overwrite: read %q, want the locked version", got)
	}
	if keys := list(t, ls, ""); strings.Join(keys, ",") != "locks/x,oplog/a" {
		t.Fatalf("listing %v, want locks/x and oplog/a", keys)
	}
	var re *storage.RetainedError
	if err := ls.Delete(ctx, "oplog/a"); !errors.As(err, &re) || time.Until(re.Until) < 23*time.Hour {
		t.Fatalf("Delete of a retained object: %v, want a RetainedError a day ahead", err)
	}
	if got := get(t, ls, "oplog/a"); got != "original" {
		t.Fatalf("after the refused Delete: read %q", got)
	}

	// A mutable key keeps only its newest version, and Delete removes it.
	if got := get(t, ls, "locks/x"); got != "second" {
		t.Fatalf("locks/x reads %q, want the newest", got)
	}
	if n := versions(t, srv, "repo/locks/x"); n != 1 {
		t.Fatalf("locks/x has %d versions after two puts, want 1", n)
	}
	if err := ls.Delete(ctx, "locks/x"); err != nil {
		t.Fatal(err)
	}
	if n := versions(t, srv, "repo/locks/x"); n != 0 {
		t.Fatalf("locks/x has %d versions after Delete, want 0", n)
	}
	if _, err := ls.Stat(ctx, "locks/x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat after Delete: %v, want ErrNotFound", err)
	}
}

// TestObjectLockUnsupported: a bucket without Object Lock and a local
// directory are refused with an error that says what to do.
func TestObjectLockUnsupported(t *testing.T) {
	srv := storagetest.StartS3(t)
	ctx := t.Context()
	st, err := storage.OpenWith(ctx, srv.URL(), srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	err = storage.CheckObjectLock(ctx, st)
	if !errors.Is(err, storage.ErrObjectLockUnsupported) || !strings.Contains(err.Error(), "--object-lock-enabled-for-bucket") {
		t.Fatalf("bucket without Object Lock: %v, want ErrObjectLockUnsupported saying how to create one", err)
	}
	fs, err := storage.Open(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := storage.CheckObjectLock(ctx, fs); !errors.Is(err, storage.ErrObjectLockUnsupported) {
		t.Fatalf("file store: %v, want ErrObjectLockUnsupported", err)
	}
	if _, err := storage.WithObjectLock(fs, storage.ObjectLock{Mode: storage.LockCompliance, Days: 1}, isLockKey); !errors.Is(err, storage.ErrObjectLockUnsupported) {
		t.Fatalf("WithObjectLock on a file store: %v, want ErrObjectLockUnsupported", err)
	}
	for _, l := range []storage.ObjectLock{{Mode: storage.LockCompliance, Days: 0}, {Mode: storage.LockCompliance, Days: -3}, {Mode: "strict", Days: 1}} {
		if err := l.Validate(); err == nil {
			t.Errorf("%+v validated", l)
		}
	}
}

// TestObjectLockConformance runs the shared suite on a locked store whose
// keys are all mutable: the version-based Get, Stat, List and Delete
// behave as every Store must.
func TestObjectLockConformance(t *testing.T) {
	srv := storagetest.StartS3Locked(t)
	storagetest.Run(t, func(t *testing.T) storage.Store {
		st := prefixed(func(p string) string { return srv.BucketURL(srv.Bucket, p) }, srv.Options())(t)
		ls, err := storage.WithObjectLock(st, storage.ObjectLock{Mode: storage.LockGovernance, Days: 1}, func(string) bool { return true })
		if err != nil {
			t.Fatal(err)
		}
		return ls
	})
}

func put(t *testing.T, st storage.Store, key, val string) {
	t.Helper()
	if err := st.Put(t.Context(), key, strings.NewReader(val)); err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
}

func get(t *testing.T, st storage.Store, key string) string {
	t.Helper()
	rc, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return string(b)
}

func list(t *testing.T, st storage.Store, prefix string) []string {
	t.Helper()
	var keys []string
	if err := st.List(t.Context(), prefix, func(i storage.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatalf("list %s: %v", prefix, err)
	}
	return keys
}

func versions(t *testing.T, srv *storagetest.S3Server, key string) int {
	t.Helper()
	out, err := srv.Client().ListObjectVersions(t.Context(), &s3.ListObjectVersionsInput{Bucket: aws.String(srv.Bucket), Prefix: aws.String(key)})
	if err != nil {
		t.Fatalf("list versions of %s: %v", key, err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// TestObjectLockStaleVersion: a store remembers which version it reads;
// when another process removed that version (here, as a GOVERNANCE
// bypass) and wrote the key again, Get reads the new one.
func TestObjectLockStaleVersion(t *testing.T) {
	srv := storagetest.StartS3Locked(t)
	ctx := t.Context()
	open := func() storage.Store {
		st, err := storage.OpenWith(ctx, srv.BucketURL(srv.Bucket, "repo"), srv.Options())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		ls, err := storage.WithObjectLock(st, storage.ObjectLock{Mode: storage.LockGovernance, Days: 1}, isLockKey)
		if err != nil {
			t.Fatal(err)
		}
		return ls
	}
	a, b := open(), open()
	put(t, a, "oplog/k", "first")
	if keys := list(t, a, "oplog/"); len(keys) != 1 {
		t.Fatalf("listing %v", keys)
	}
	cl := srv.Client()
	vs, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(srv.Bucket), Prefix: aws.String("repo/oplog/k")})
	if err != nil || len(vs.Versions) != 1 {
		t.Fatalf("versions: %v %v", vs, err)
	}
	_, err = cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("repo/oplog/k"),
		VersionId: vs.Versions[0].VersionId, BypassGovernanceRetention: aws.Bool(true)})
	if err != nil {
		t.Fatalf("delete with a governance bypass: %v", err)
	}
	put(t, b, "oplog/k", "second")
	if got := get(t, a, "oplog/k"); got != "second" {
		t.Fatalf("read %q, want the version written after the remembered one was removed", got)
	}
}
