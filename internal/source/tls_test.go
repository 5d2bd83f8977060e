package source

import (
	"errors"
	"strings"
	"testing"
)

// The driver's words for each TLS failure, as seen against the TLS test
// server (TestTLS in cmd/rewind) or quoted from crypto/tls and crypto/x509,
// get the option that fixes them; other errors get none.
func TestTLSAdvice(t *testing.T) {
	sel := "server selection error: context deadline exceeded, current topology: { Type: Single, Servers: [{ Addr: 127.0.0.1:1, Type: Unknown, Last error: "
	for _, c := range []struct{ err, want string }{
		{sel + "tls: failed to verify certificate: x509: certificate signed by unknown authority }, ] }", "add tlsCAFile="},
		{sel + "connection(127.0.0.1:1[-5]) incomplete read of message header: remote error: tls: certificate required }, ] }", "add tlsCertificateKeyFile="},
		{sel + "connection(127.0.0.1:1[-9]) incomplete read of message header: connection closed unexpectedly by the other side: EOF }, ] }", "add tls=true"},
		{"x509: decryption password incorrect", "check tlsCertificateKeyFilePassword"},
		{"no password provided to decrypt private key", "add tlsCertificateKeyFilePassword="},
		{sel + "tls: failed to verify certificate: x509: certificate has expired or is not yet valid: current time ... }, ] }", "renew it"},
		{sel + "tls: failed to verify certificate: x509: certificate is valid for db1.example.com, not db2 }, ] }", "a name it was issued for"},
		{sel + "tls: first record does not look like a TLS handshake }, ] }", "remove tls=true"},
		{sel + "dial tcp 127.0.0.1:1: connect: connection refused }, ] }", ""},
		// The same words from a connection lost mid-read, after selection.
		{"connection(127.0.0.1:1[-9]) incomplete read of message header: connection closed unexpectedly by the other side: EOF", ""},
	} {
		got := TLSAdvice(errors.New(c.err))
		if c.want == "" && got != "" || !strings.Contains(got, c.want) {
			t.Errorf("TLSAdvice(%q) = %q, want one with %q", c.err, got, c.want)
		}
	}
	if TLSAdvice(nil) != "" {
		t.Error("TLSAdvice(nil) is not empty")
	}
}
