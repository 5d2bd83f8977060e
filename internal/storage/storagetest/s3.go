package storagetest

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rewind-backup/rewind/internal/storage"
)

// S3Server is a versitygw gateway with its posix backend: each directory
// under its data directory is a bucket. It can be stopped and started again
// on the same port and data, to test what a client does during an outage.
type S3Server struct {
	// Bucket is created by StartS3.
	Bucket    string
	AccessKey string
	SecretKey string

	t    testing.TB
	bin  string
	dir  string
	port int

	// versioning is versitygw's --versioning-dir, "" without versioning.
	versioning string

	mu   sync.Mutex
	proc *process
}

// StartS3 starts a versitygw S3 server on a free loopback port with one
// empty bucket, building versitygw into the test cache if needed. The server
// is killed when the test ends. A server that cannot be built or started
// fails the test.
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	s := newS3Server(t, "rewind-test", "")
	s.CreateBucket(s.Bucket)
	s.Start()
	t.Cleanup(s.Stop)
	return s
}

// newS3Server prepares a server (not started) whose test bucket is
// bucket; versioning is its --versioning-dir, "" for none.
func newS3Server(t testing.TB, bucket, versioning string) *S3Server {
	return &S3Server{
		Bucket:     bucket,
		AccessKey:  "rewindtestaccess",
		SecretKey:  "rewind-test-secret-key-0123456789",
		t:          t,
		bin:        goBinary(t, EnvVersityGW, "versitygw", "github.com/versity/versitygw/cmd/versitygw", VersityGWVersion),
		dir:        t.TempDir(),
		versioning: versioning,
		port:       freePort(t),
	}
}

// StartS3Locked starts a versitygw S3 server with versioning, whose
// Bucket is created through the S3 API with Object Lock enabled (versitygw
// v1.8.0's posix backend implements Object Lock and, with
// --versioning-dir, versions and delete markers). Stopped when the test
// ends.
func StartS3Locked(t testing.TB) *S3Server {
	t.Helper()
	s := newS3Server(t, "rewind-locked", t.TempDir())
	s.Start()
	t.Cleanup(s.Stop)
	_, err := s.Client().CreateBucket(t.Context(), &s3.CreateBucketInput{Bucket: aws.String(s.Bucket),
		ObjectLockEnabledForBucket: aws.Bool(true)})
	if err != nil {
		t.Fatalf("create S3 bucket %s with object lock: %v", s.Bucket, err)
	}
	return s
}

// Client is a raw S3 client with the server's root credentials: what an
// intruder holding the repository's credentials could call.
func (s *S3Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.Endpoint()),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket makes an empty bucket (a directory of the posix backend).
func (s *S3Server) CreateBucket(name string) {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Join(s.dir, name), 0o755); err != nil {
		s.t.Fatalf("create S3 bucket %s: %v", name, err)
	}
}

// Endpoint is the server's HTTP address.
func (s *S3Server) Endpoint() string { return fmt.Sprintf("http://127.0.0.1:%d", s.port) }

// URL is the repository URL of the test bucket.
func (s *S3Server) URL() string { return s.BucketURL(s.Bucket, "") }

// BucketURL is the repository URL of bucket, scoped to prefix if not empty.
func (s *S3Server) BucketURL(bucket, prefix string) string {
	p := ""
	if prefix != "" {
		p = "/" + prefix
	}
	return fmt.Sprintf("s3://%s%s?endpoint=%s&use_path_style=true&region=us-east-1", bucket, p, s.Endpoint())
}

// Options carries the credentials to storage.OpenWith.
func (s *S3Server) Options() storage.Options {
	return storage.Options{AWS: &storage.AWSCredentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey}}
}

// Env is what a child process (the rewind binary) needs to reach the
// server with storage.Open.
func (s *S3Server) Env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + s.AccessKey, "AWS_SECRET_ACCESS_KEY=" + s.SecretKey, "AWS_REGION=us-east-1"}
}

// Start starts the server (again, after Stop) on the same port and data.
func (s *S3Server) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	args := []string{"--port", fmt.Sprintf("127.0.0.1:%d", s.port), "posix"}
	if s.versioning != "" {
		args = append(args, "--versioning-dir", s.versioning)
	}
	s.proc = startProcess(s.t, "versitygw", s.bin, append(args, s.dir),
		[]string{"ROOT_ACCESS_KEY=" + s.AccessKey, "ROOT_SECRET_KEY=" + s.SecretKey})
	s.proc.waitReady(s.t, 30*time.Second, httpAnswers(s.Endpoint()+"/", 0))
}

// Stop kills the server; its data stays for Start.
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
	s.proc = nil
}
