package api

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
)

// A job always records its end: an error or a panic makes it failed, and
// nothing stays "running".
func TestJobsAlwaysEnd(t *testing.T) {
	js := newJobs()
	ok := js.start(context.Background(), nil, "snapshot", nil, func(context.Context) (any, error) { return "done", nil })
	bad := js.start(context.Background(), nil, "restore", nil, func(context.Context) (any, error) { return nil, errors.New("target down") })
	boom := js.start(context.Background(), nil, "restore", func() any { return "p" }, func(context.Context) (any, error) { panic("bug") })
	js.wait(10 * time.Second)
	want := map[string]string{ok.ID: StateSucceeded, bad.ID: StateFailed, boom.ID: StateFailed}
	for _, j := range js.list() {
		if j.State != want[j.ID] || j.Ended == nil || j.Ended.Before(j.Started) {
			t.Fatalf("job %+v, want state %s with an end time", j, want[j.ID])
		}
	}
	if j, _ := js.get(boom.ID); !strings.Contains(j.Error, "panic: bug") || j.Progress != "p" {
		t.Fatalf("panicking job = %+v, want the panic as its error", j)
	}
	if j, _ := js.get(bad.ID); j.Error != "target down" {
		t.Fatalf("failed job error %q", j.Error)
	}
	if len(js.list()) != 3 {
		t.Fatalf("%d jobs listed, want 3", len(js.list()))
	}
}

// With tls_cert and tls_key the server speaks TLS only; the health
// endpoints still need no token; Run returns nil after ctx ends.
func TestTLSAndShutdown(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s, err := New(Deps{Config: config.API{Listen: "127.0.0.1:0", Token: "t", TLSCert: certFile, TLSKey: keyFile}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for s.Addr() == "" {
		time.Sleep(10 * time.Millisecond)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get("https://" + s.Addr() + "/-/healthy")
	if err != nil {
		t.Fatalf("GET /-/healthy over TLS: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET /-/healthy over TLS: %d", resp.StatusCode)
	}
	if resp, err := c.Get("https://" + s.Addr() + "/api/v1/status"); err != nil || resp.StatusCode != 401 {
		t.Fatalf("GET /api/v1/status over TLS without token: %v %v, want 401", resp.StatusCode, err)
	}
	if resp, err := http.Get("http://" + s.Addr() + "/-/healthy"); err == nil && resp.StatusCode == 200 {
		t.Fatal("plain HTTP was served on a TLS listener")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after ctx end: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return within 15 s of ctx end")
	}
}

// A token file that is empty is refused with what to do.
func TestEmptyTokenFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(f, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(Deps{Config: config.API{Listen: "127.0.0.1:0", TokenFile: f}}); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("New with an empty token file: %v", err)
	}
}

func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "rewind test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
