package config

import (
	"strings"
	"testing"
)

// A connection string whose TLS key password comes from the environment
// (${VAR} in the server file) reaches the driver exactly as written, every
// tls* option intact, and shows without the password.
func TestServerFileKeepsTLSOptions(t *testing.T) {
	t.Setenv("KEY_PASSWORD", "kp%26%3D-LEAK")
	const written = "mongodb://db1:27017/?replicaSet=rs0&tls=true&tlsCAFile=%2Fetc%2Frewind%2Fca.pem" +
		"&tlsCertificateKeyFile=%2Fetc%2Frewind%2Fclient.pem&tlsCertificateKeyFilePassword="
	s, err := ParseServer([]byte("deployments:\n  - name: orders\n    repo: /tmp/r\n    source: " + written + "${KEY_PASSWORD}\n"))
	if err != nil {
		t.Fatal(err)
	}
	src := s.Deployments[0].Config.Source
	if src.Reveal() != written+"kp%26%3D-LEAK" {
		t.Errorf("source = %q, want the string as written with the variable's value", src.Reveal())
	}
	if shown := src.String(); strings.Contains(shown, "LEAK") || !strings.Contains(shown, "tlsCertificateKeyFile=%2Fetc%2Frewind%2Fclient.pem") {
		t.Errorf("source shows as %q: want the key password hidden and the files kept", shown)
	}
}
