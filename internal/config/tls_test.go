package config

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlsFiles writes two placeholder files, as a CA file and a client
// certificate file, and returns their paths.
func tlsFiles(t *testing.T) (ca, cert string) {
	dir := t.TempDir()
	ca, cert = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem")
	for _, f := range []string{ca, cert} {
		if err := os.WriteFile(f, []byte("PEM"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return ca, cert
}

// A connection string whose TLS key password comes from the environment
// (${VAR} in the server file) reaches the driver exactly as written, every
// tls* option intact, and shows without the password.
func TestServerFileKeepsTLSOptions(t *testing.T) {
	ca, cert := tlsFiles(t)
	t.Setenv("KEY_PASSWORD", "kp%26%3D-LEAK")
	written := "mongodb://db1:27017/?replicaSet=rs0&tls=true&tlsCAFile=" + url.QueryEscape(ca) +
		"&tlsCertificateKeyFile=" + url.QueryEscape(cert) + "&tlsCertificateKeyFilePassword="
	s, err := ParseServer([]byte("deployments:\n  - name: orders\n    repo: /tmp/r\n    source: " + written + "${KEY_PASSWORD}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src := s.Deployments[0].Config.Source
	if src.Reveal() != written+"kp%26%3D-LEAK" {
		t.Errorf("source = %q, want the string as written with the variable's value", src.Reveal())
	}
	if shown := src.String(); strings.Contains(shown, "LEAK") || !strings.Contains(shown, "tlsCertificateKeyFile="+url.QueryEscape(cert)) {
		t.Errorf("source shows as %q: want the key password hidden and the files kept", shown)
	}
}

// A tls* file that cannot be read is bad input, found before connecting:
// the error names the option and what the file should hold, and hides the
// key password.
func TestCheckMongoURITLSFiles(t *testing.T) {
	ca, cert := tlsFiles(t)
	missing := filepath.Join(t.TempDir(), "nothing.pem")
	for _, c := range []struct{ uri, want string }{
		{"mongodb://h/?tls=true&tlsCAFile=" + ca + "&tlsCertificateKeyFile=" + cert + "&tlsCertificateKeyFilePassword=LEAKpw", ""},
		{"mongodb://h/?tls=true&tlsCAFile=" + missing + "&tlsCertificateKeyFilePassword=LEAKpw", "tlsCAFile cannot be read"},
		{"mongodb+srv://h.example/?tlsCertificateKeyFile=" + missing + "&tlsCertificateKeyFilePassword=LEAKpw", "tlsCertificateKeyFile cannot be read"},
	} {
		err := CheckMongoURI(c.uri)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("CheckMongoURI(%s) = %v, want nil", c.uri, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), missing)):
			t.Errorf("CheckMongoURI(%s) = %v, want an error with %q and the path", c.uri, err, c.want)
		case err != nil && strings.Contains(err.Error(), "LEAK"):
			t.Errorf("CheckMongoURI shows the key password: %v", err)
		}
	}
}
