package testserver

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs are the PEM files of a private certificate authority made for one
// test by NewCerts with crypto/x509, never read from anywhere else: the CA,
// a server certificate it signed, and a client certificate it signed whose
// key is encrypted with a password, as operators keep them.
type Certs struct {
	// CAFile is the CA's certificate: what a client names in tlsCAFile, and
	// the server trusts client certificates from.
	CAFile string
	// ServerCertFile and ServerKeyFile are the server's certificate, for
	// 127.0.0.1, ::1 and localhost, and its key (unencrypted).
	ServerCertFile, ServerKeyFile string
	// ClientFile holds the client certificate (subject ClientSubject) and
	// its key encrypted with ClientPassword, in one file: the form
	// tlsCertificateKeyFile takes.
	ClientFile string
	// ClientPassword decrypts ClientFile's key: tlsCertificateKeyFilePassword.
	ClientPassword string
	// ClientSubject is the client certificate's subject, the user name
	// MONGODB-X509 authentication would log it in as.
	ClientSubject string
}

// NewCerts makes a CA, a server and a client certificate (ECDSA P-256,
// valid for a day) in t.TempDir().
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	dir := t.TempDir()
	pw := make([]byte, 8)
	rand.Read(pw)
	c := &Certs{
		CAFile:         filepath.Join(dir, "ca.pem"),
		ServerCertFile: filepath.Join(dir, "server.pem"),
		ServerKeyFile:  filepath.Join(dir, "server-key.pem"),
		ClientFile:     filepath.Join(dir, "client.pem"),
		ClientPassword: "kp&=%/" + hex.EncodeToString(pw), // characters a URI must escape
		ClientSubject:  "CN=rewind-backup,OU=backup,O=rewind test",
	}
	caKey, caCert := newCert(t, &x509.Certificate{
		Subject:               pkix.Name{CommonName: "rewind test CA"},
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}, nil, nil)
	writePEM(t, c.CAFile, &pem.Block{Type: "CERTIFICATE", Bytes: caCert.Raw})

	srvKey, srvCert := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, caCert, caKey)
	writePEM(t, c.ServerCertFile, &pem.Block{Type: "CERTIFICATE", Bytes: srvCert.Raw})
	writePEM(t, c.ServerKeyFile, &pem.Block{Type: "EC PRIVATE KEY", Bytes: marshalKey(t, srvKey)})

	cliKey, cliCert := newCert(t, &x509.Certificate{
		Subject:     pkix.Name{CommonName: "rewind-backup", OrganizationalUnit: []string{"backup"}, Organization: []string{"rewind test"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, caCert, caKey)
	//lint:ignore SA1019 the driver decrypts this DEK-Info form (and PKCS#8, which the standard library cannot write); its weakness does not matter for a test key
	enc, err := x509.EncryptPEMBlock(rand.Reader, "EC PRIVATE KEY", marshalKey(t, cliKey), []byte(c.ClientPassword), x509.PEMCipherAES256)
	if err != nil {
		t.Fatalf("testserver: encrypt client key: %v", err)
	}
	writePEM(t, c.ClientFile, &pem.Block{Type: "CERTIFICATE", Bytes: cliCert.Raw}, enc)
	return c
}

// newCert signs tmpl with parent's key (itself when parent is nil) and
// returns the new key and certificate.
func newCert(t testing.TB, tmpl, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*ecdsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatalf("testserver: generate key: %v", err)
	}
	serial, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	tmpl.SerialNumber = serial
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatalf("testserver: create certificate: %v", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("testserver: parse certificate: %v", err)
	}
	return key, cert
}

func marshalKey(t testing.TB, key *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatalf("testserver: marshal key: %v", err)
	}
	return b
}

func writePEM(t testing.TB, path string, blocks ...*pem.Block) {
	t.Helper()
	var out []byte
	for _, b := range blocks {
		out = append(out, pem.EncodeToMemory(b)...)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatalf("testserver: write %s: %v", path, err)
	}
}

// tlsArgs are the server's flags for opts: TLS with the server certificate,
// and with the CA when clients must present a certificate.
func tlsArgs(opts Options) []string {
	if opts.TLS == nil {
		return nil
	}
	args := []string{"--tls-cert-file", opts.TLS.ServerCertFile, "--tls-key-file", opts.TLS.ServerKeyFile}
	if opts.RequireClientCert {
		args = append(args, "--tls-ca-file", opts.TLS.CAFile)
	}
	return args
}

// tlsURI adds to the server's printed URI (which says tls=true) the options
// a client needs: the CA, and the client certificate with its password
// when the server requires one.
func tlsURI(uri string, opts Options) string {
	if opts.TLS == nil {
		return uri
	}
	uri += "&tlsCAFile=" + url.QueryEscape(opts.TLS.CAFile)
	if opts.RequireClientCert {
		uri += "&tlsCertificateKeyFile=" + url.QueryEscape(opts.TLS.ClientFile) +
			"&tlsCertificateKeyFilePassword=" + url.QueryEscape(opts.TLS.ClientPassword)
	}
	return uri
}
