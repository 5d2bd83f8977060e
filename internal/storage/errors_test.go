package storage_test

import (
	"context"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
)

// TestCloudErrors checks, on each emulator, the errors users meet first: a
// bucket that doesn't exist and wrong credentials, with no secret in the
// message.
func TestCloudErrors(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t)
	gcs := storagetest.StartGCS(t)
	az := storagetest.StartAzurite(t)
	const wrongSecret = "WRONG-secret-that-must-not-leak"
	wrongAzureKey := "V1JPTkctYXp1cmUta2V5LXRoYXQtbXVzdC1ub3QtbGVhaw==" // base64, wrong
	for _, tc := range []struct {
		name, url string
		opts      storage.Options
		want      string
		secrets   []string
	}{
		{"S3MissingBucket", s3.BucketURL("no-such-bucket", ""), s3.Options(),
			"bucket no-such-bucket does not exist or is not accessible: create it first", []string{s3.SecretKey}},
		{"GCSMissingBucket", gcs.BucketURL("no-such-bucket", "p"), gcs.Options(),
			"bucket no-such-bucket does not exist or is not accessible: create it first", nil},
		{"AzureMissingContainer", az.ContainerURL("no-such-container", ""), az.Options(),
			"bucket no-such-container does not exist or is not accessible: create it first", []string{storagetest.AzuriteKey}},
		{"S3WrongSecret", s3.URL(),
			storage.Options{AWS: &storage.AWSCredentials{AccessKeyID: s3.AccessKey, SecretAccessKey: wrongSecret}},
			"check the endpoint and credentials", []string{wrongSecret}},
		{"AzureWrongKey", az.URL(),
			storage.Options{Azure: &storage.AzureSharedKey{Account: storagetest.AzuriteAccount, Key: wrongAzureKey}},
			"check the endpoint and credentials", []string{wrongAzureKey}},
		{"S3SecretInURL", s3.URL() + "&secret_access_key=" + wrongSecret, s3.Options(),
			"unknown query parameter", []string{wrongSecret}},
		{"S3UserinfoInURL", strings.Replace(s3.URL(), "s3://", "s3://AKIDLEAK:"+wrongSecret+"@", 1), s3.Options(),
			"credentials in the URL", []string{wrongSecret, "AKIDLEAK"}},
		{"AzureSASInURL", az.URL() + "&sig=" + wrongSecret, az.Options(),
			"unknown query parameter", []string{wrongSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := storage.OpenWith(ctx, tc.url, tc.opts)
			if err == nil {
				s.Close()
				t.Fatalf("OpenWith(%s) succeeded, want an error", redact.URL(tc.url))
			}
			msg := err.Error()
			t.Logf("error: %s", msg)
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error = %q, want it to say %q", msg, tc.want)
			}
			for _, secret := range tc.secrets {
				if strings.Contains(msg, secret) {
					t.Errorf("error %q shows the secret %q", msg, secret)
				}
			}
		})
	}
}

// TestCloudFromEnvironment opens each emulator the way the agent does in
// production: credentials only from the environment, no Options.
func TestCloudFromEnvironment(t *testing.T) {
	ctx := context.Background()
	s3 := storagetest.StartS3(t)
	gcs := storagetest.StartGCS(t)
	az := storagetest.StartAzurite(t)
	// No shared AWS files: a path that surely does not exist (a fixed one
	// such as /nonexistent may, on a shared machine).
	absent := filepath.Join(t.TempDir(), "absent")
	t.Setenv("AWS_CONFIG_FILE", absent)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", absent)
	for _, env := range [][]string{s3.Env(), gcs.Env(), az.Env()} {
		for _, kv := range env {
			k, v, _ := strings.Cut(kv, "=")
			t.Setenv(k, v)
		}
	}
	for _, u := range []string{s3.URL(), gcs.URL(), az.URL()} {
		s, err := storage.Open(ctx, u)
		if err != nil {
			t.Errorf("Open(%s) from the environment: %v", u, err)
			continue
		}
		if err := s.Put(ctx, "env/key", strings.NewReader("from env")); err != nil {
			t.Errorf("Put on %s: %v", u, err)
		} else if r, err := s.Get(ctx, "env/key"); err != nil {
			t.Errorf("Get on %s: %v", u, err)
		} else {
			b, _ := io.ReadAll(r)
			r.Close()
			if string(b) != "from env" {
				t.Errorf("Get on %s = %q", u, b)
			}
		}
		s.Close()
	}
}

// TestAzureContainerDeletedAfterOpen drives the azureblob writer into the
// error path where v0.47.0 panics: Put must return an error instead.
func TestAzureContainerDeletedAfterOpen(t *testing.T) {
	ctx := context.Background()
	az := storagetest.StartAzurite(t)
	az.CreateContainer("doomed")
	s, err := storage.OpenWith(ctx, az.ContainerURL("doomed", ""), az.Options())
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	defer s.Close()
	az.DeleteContainer("doomed")
	for _, size := range []int{0, 10, 12 << 20} {
		err := s.Put(ctx, "k", strings.NewReader(strings.Repeat("x", size)))
		if err == nil {
			t.Errorf("Put of %d bytes into a deleted container succeeded", size)
		}
	}
}
