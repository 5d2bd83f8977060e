package storagetest

import (
	"bytes"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/storage"
)

// GCSServer is a fake-gcs-server with its filesystem backend.
type GCSServer struct {
	// Bucket is created by StartGCS.
	Bucket string

	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *process
}

// StartGCS starts fake-gcs-server on a free loopback port with one empty
// bucket, building it into the test cache if needed. The server is killed
// when the test ends; one that cannot start fails the test.
func StartGCS(t testing.TB) *GCSServer {
	t.Helper()
	s := &GCSServer{
		Bucket: "rewind-test",
		t:      t,
		bin:    goBinary(t, EnvFakeGCS, "fake-gcs-server", "github.com/fsouza/fake-gcs-server", FakeGCSVersion),
		dir:    t.TempDir(),
		port:   freePort(t),
	}
	s.Start()
	t.Cleanup(s.Stop)
	s.CreateBucket(s.Bucket)
	return s
}

// Host is "127.0.0.1:PORT", the form STORAGE_EMULATOR_HOST takes (no
// scheme: with one, the Go client builds a broken URL).
func (s *GCSServer) Host() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is the repository URL of the test bucket.
func (s *GCSServer) URL() string { return s.BucketURL(s.Bucket, "") }

// BucketURL is the repository URL of bucket, scoped to prefix if not empty.
func (s *GCSServer) BucketURL(bucket, prefix string) string {
	if prefix != "" {
		return "gs://" + bucket + "/" + prefix
	}
	return "gs://" + bucket
}

// Options points storage.OpenWith at the emulator.
func (s *GCSServer) Options() storage.Options { return storage.Options{GCSEmulatorHost: s.Host()} }

// Env is what a child process needs to reach the emulator with storage.Open.
func (s *GCSServer) Env() []string { return []string{"STORAGE_EMULATOR_HOST=" + s.Host()} }

// CreateBucket creates an empty bucket through the JSON API.
func (s *GCSServer) CreateBucket(name string) {
	s.t.Helper()
	body := fmt.Sprintf(`{"name":%q}`, name)
	resp, err := http.Post("http://"+s.Host()+"/storage/v1/b?project=test", "application/json", bytes.NewBufferString(body))
	if err != nil {
		s.t.Fatalf("create GCS bucket %s: %v", name, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		s.t.Fatalf("create GCS bucket %s: status %s", name, resp.Status)
	}
}

// Start starts the server (again, after Stop) on the same port and data.
func (s *GCSServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	addr := s.Host()
	// -public-host must match the address clients use, or reads fail with
	// "object doesn't exist".
	s.proc = startProcess(s.t, "fake-gcs-server", s.bin, []string{
		"-scheme", "http", "-host", "127.0.0.1", "-port", fmt.Sprint(s.port),
		"-public-host", addr, "-external-url", "http://" + addr,
		"-backend", "filesystem", "-filesystem-root", s.dir, "-log-level", "warn",
	}, nil)
	s.proc.waitReady(s.t, 30*time.Second, httpAnswers("http://"+addr+"/storage/v1/b", http.StatusOK))
}

// Stop kills the server; its data stays for Start.
func (s *GCSServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
	s.proc = nil
}
