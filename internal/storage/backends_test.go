package storage_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

var prefixSeq atomic.Int64

// prefixed returns an opener that gives each subtest a fresh prefix of one
// bucket, through the same URL form users write.
func prefixed(urlFor func(prefix string) string, opts storage.Options) storagetest.Opener {
	return func(t *testing.T) storage.Store {
		prefix := fmt.Sprintf("t%03d-%s", prefixSeq.Add(1), strings.ReplaceAll(t.Name(), "/", "-"))
		s, err := storage.OpenWith(context.Background(), urlFor(prefix), opts)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		return s
	}
}

func TestFileConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		s, err := storage.Open(context.Background(), "file://"+t.TempDir()+"/repo")
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		return s
	})
}

func TestS3Conformance(t *testing.T) {
	srv := storagetest.StartS3(t)
	storagetest.Run(t, prefixed(func(p string) string { return srv.BucketURL(srv.Bucket, p) }, srv.Options()))
}

func TestGCSConformance(t *testing.T) {
	srv := storagetest.StartGCS(t)
	storagetest.Run(t, prefixed(func(p string) string { return srv.BucketURL(srv.Bucket, p) }, srv.Options()))
}

func TestAzureConformance(t *testing.T) {
	srv := storagetest.StartAzurite(t)
	storagetest.Run(t, prefixed(func(p string) string { return srv.ContainerURL(srv.Container, p) }, srv.Options()))
}
