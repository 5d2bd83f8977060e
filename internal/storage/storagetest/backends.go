package storagetest

import (
	"testing"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Server is what every emulator in the harness offers, so a test can run
// the same scenario (an outage, say) against each.
type Server interface {
	// URL is the repository URL of the server's test bucket.
	URL() string
	// Options carries the credentials to storage.OpenWith.
	Options() storage.Options
	// Env is the environment a child process needs for storage.Open.
	Env() []string
	// Stop kills the server, keeping its data and port.
	Stop()
	// Start starts it again after Stop.
	Start()
}

var (
	_ Server = (*S3Server)(nil)
	_ Server = (*GCSServer)(nil)
	_ Server = (*AzuriteServer)(nil)
)

// Backend is one place a repository can live, ready to open.
type Backend struct {
	Name    string // "file", "s3", "gcs", "azure"
	URL     string
	Options storage.Options
	Server  Server // nil for "file"
}

// Open opens the backend's store and closes it when the test ends.
func (b Backend) Open(t testing.TB) storage.Store {
	t.Helper()
	s, err := storage.OpenWith(t.Context(), b.URL, b.Options)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// StartAll returns a local directory and the three emulators (started one
// after another, about 10 s in all), for tests that must hold on every
// backend.
func StartAll(t testing.TB) []Backend {
	t.Helper()
	s3, gcs, az := StartS3(t), StartGCS(t), StartAzurite(t)
	return []Backend{
		{Name: "file", URL: "file://" + t.TempDir()},
		{Name: "s3", URL: s3.URL(), Options: s3.Options(), Server: s3},
		{Name: "gcs", URL: gcs.URL(), Options: gcs.Options(), Server: gcs},
		{Name: "azure", URL: az.URL(), Options: az.Options(), Server: az},
	}
}
