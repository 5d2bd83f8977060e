package storagetest

import (
	"context"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Azurite's well-known development account: public, documented by
// Microsoft, valid only against the emulator.
const (
	AzuriteAccount = "devstoreaccount1"
	AzuriteKey     = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// AzuriteServer is Azurite's blob service.
type AzuriteServer struct {
	// Container is created by StartAzurite.
	Container string

	t    testing.TB
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	proc *process
}

// StartAzurite starts azurite-blob on a free loopback port with one empty
// container, installing Azurite into the test cache if needed. It takes 5 to
// 10 s to come up. The server is killed when the test ends; one that cannot
// start fails the test.
func StartAzurite(t testing.TB) *AzuriteServer {
	t.Helper()
	s := &AzuriteServer{
		Container: "rewind-test",
		t:         t,
		bin:       azuriteBinary(t),
		dir:       t.TempDir(),
		port:      freePort(t),
	}
	s.Start()
	t.Cleanup(s.Stop)
	s.CreateContainer(s.Container)
	return s
}

// Domain is "127.0.0.1:PORT", the azblob URL's domain parameter.
func (s *AzuriteServer) Domain() string { return fmt.Sprintf("127.0.0.1:%d", s.port) }

// URL is the repository URL of the test container.
func (s *AzuriteServer) URL() string { return s.ContainerURL(s.Container, "") }

// ContainerURL is the repository URL of a container, scoped to prefix if
// not empty.
func (s *AzuriteServer) ContainerURL(name, prefix string) string {
	p := ""
	if prefix != "" {
		p = "/" + prefix
	}
	return fmt.Sprintf("azblob://%s%s?protocol=http&domain=%s", name, p, s.Domain())
}

// Options carries the development account's key to storage.OpenWith.
func (s *AzuriteServer) Options() storage.Options {
	return storage.Options{Azure: &storage.AzureSharedKey{Account: AzuriteAccount, Key: AzuriteKey}}
}

// Env is what a child process needs to reach Azurite with storage.Open.
func (s *AzuriteServer) Env() []string {
	return []string{"AZURE_STORAGE_ACCOUNT=" + AzuriteAccount, "AZURE_STORAGE_KEY=" + AzuriteKey}
}

// CreateContainer creates an empty container. gocloud never creates one,
// and its writer panics on a missing one.
func (s *AzuriteServer) CreateContainer(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.containerClient(name).Create(ctx, nil); err != nil {
		s.t.Fatalf("create Azure container %s: %v", name, err)
	}
}

// DeleteContainer deletes a container and everything in it.
func (s *AzuriteServer) DeleteContainer(name string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.containerClient(name).Delete(ctx, nil); err != nil {
		s.t.Fatalf("delete Azure container %s: %v", name, err)
	}
}

func (s *AzuriteServer) containerClient(name string) *container.Client {
	s.t.Helper()
	cred, err := azblob.NewSharedKeyCredential(AzuriteAccount, AzuriteKey)
	if err != nil {
		s.t.Fatalf("azure container client: %v", err)
	}
	u, _ := url.JoinPath("http://"+s.Domain(), AzuriteAccount, name)
	c, err := container.NewClientWithSharedKeyCredential(u, cred, nil)
	if err != nil {
		s.t.Fatalf("azure container client: %v", err)
	}
	return c
}

// Start starts Azurite (again, after Stop) on the same port and data.
func (s *AzuriteServer) Start() {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		return
	}
	s.proc = startProcess(s.t, "azurite-blob", s.bin, []string{
		"--blobHost", "127.0.0.1", "--blobPort", fmt.Sprint(s.port), "--location", s.dir,
		"--silent", "--skipApiVersionCheck", "--disableTelemetry",
	}, nil)
	s.proc.waitReady(s.t, 60*time.Second, httpAnswers("http://"+s.Domain()+"/"+AzuriteAccount+"?comp=list", 0))
}

// Stop kills Azurite; its data stays for Start.
func (s *AzuriteServer) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc.stop()
	s.proc = nil
}
