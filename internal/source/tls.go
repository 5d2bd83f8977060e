package source

import "strings"

// tlsProblems map what the driver reports of a failed TLS connection (Go's
// crypto/tls and crypto/x509 messages, quoted in its server selection and
// handshake errors) to the connection string option that fixes it. Order
// matters: an expired certificate also "failed to verify".
var tlsProblems = []struct {
	says   []string
	advice string
	// within, when set, must be in the message too: it keeps advice about
	// connecting away from a connection lost later, mid-read.
	within string
}{
	{says: []string{"decryption password incorrect", "pkcs8: incorrect password"},
		advice: "the key in tlsCertificateKeyFile did not decrypt: check tlsCertificateKeyFilePassword"},
	{says: []string{"no password provided to decrypt private key"},
		advice: "the key in tlsCertificateKeyFile is encrypted: add tlsCertificateKeyFilePassword=PASSWORD to the connection string"},
	{says: []string{"certificate has expired or is not yet valid"},
		advice: "the server's TLS certificate has expired or is not valid yet: renew it on the server, or check this machine's clock"},
	{says: []string{"x509: certificate is valid for", "x509: cannot validate certificate for"},
		advice: "the server's TLS certificate does not name the host in the connection string: connect with a name it was issued for"},
	{says: []string{"certificate signed by unknown authority"},
		advice: "the server's TLS certificate is not signed by a CA this machine trusts: add tlsCAFile=/path/to/ca.pem (the CA that signed it) to the connection string"},
	{says: []string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority"},
		advice: "the server requires a client certificate it trusts: add tlsCertificateKeyFile=/path/to/client.pem (certificate and key in one PEM file, the key's password in tlsCertificateKeyFilePassword) to the connection string"},
	{says: []string{"first record does not look like a TLS handshake"},
		advice: "the server does not speak TLS: remove tls=true (or ssl=true) from the connection string"},
	// A TLS-only server hangs up on a plain client's hello without a word:
	// the driver never selects it.
	{says: []string{"incomplete read of message header: connection closed unexpectedly by the other side: EOF"},
		advice: "the server closed the connection before it answered: if it takes TLS only, add tls=true (and tlsCAFile=/path/to/ca.pem for a private CA) to the connection string",
		within: "server selection error"},
}

// TLSAdvice says which connection string option fixes err, a driver error
// from connecting (or from reading the URI's tls* files), when it is a TLS
// problem: "add tlsCAFile=..." for a server certificate from an unknown CA,
// "add tlsCertificateKeyFile=..." when the server wants a client
// certificate, and so on. It returns "" for any other error. The source
// and the restore target (so undo, drills and checksum too) share it.
func TLSAdvice(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, p := range tlsProblems {
		if !strings.Contains(msg, p.within) {
			continue
		}
		for _, s := range p.says {
			if strings.Contains(msg, s) {
				return p.advice
			}
		}
	}
	return ""
}
