package source

import "strings"

// tlsProblems map what the driver reports of a failed TLS connection (Go's
// crypto/tls and crypto/x509 messages, quoted in its server selection and
// handshake errors) to the connection string option that fixes it. Order
// matters: an expired certificate also "failed to verify".
var tlsProblems = []struct {
	says   []string
	advice string
}{
	{[]string{"decryption password incorrect", "pkcs8: incorrect password"},
		"the key in tlsCertificateKeyFile did not decrypt: check tlsCertificateKeyFilePassword"},
	{[]string{"no password provided to decrypt private key"},
		"the key in tlsCertificateKeyFile is encrypted: add tlsCertificateKeyFilePassword=PASSWORD to the connection string"},
	{[]string{"certificate has expired or is not yet valid"},
		"the server's TLS certificate has expired or is not valid yet: renew it on the server, or check this machine's clock"},
	{[]string{"x509: certificate is valid for", "x509: cannot validate certificate for"},
		"the server's TLS certificate does not name the host in the connection string: connect with a name it was issued for"},
	{[]string{"certificate signed by unknown authority"},
		"the server's TLS certificate is not signed by a CA this machine trusts: add tlsCAFile=/path/to/ca.pem (the CA that signed it) to the connection string"},
	{[]string{"tls: certificate required", "tls: bad certificate", "tls: unknown certificate authority"},
		"the server requires a client certificate it trusts: add tlsCertificateKeyFile=/path/to/client.pem (certificate and key in one PEM file, the key's password in tlsCertificateKeyFilePassword) to the connection string"},
	{[]string{"first record does not look like a TLS handshake"},
		"the server does not speak TLS: remove tls=true (or ssl=true) from the connection string"},
	// A TLS-only server hangs up on a plain client's hello without a word.
	{[]string{"incomplete read of message header: connection closed unexpectedly by the other side: EOF"},
		"the server closed the connection before it answered: if it takes TLS only, add tls=true (and tlsCAFile=/path/to/ca.pem for a private CA) to the connection string"},
}

// TLSAdvice says which connection string option fixes err, a driver error
// from connecting (or from reading the URI's tls* files), when it is a TLS
// problem: "add tlsCAFile=..." for a server certificate from an unknown CA,
// "add tlsCertificateKeyFile=..." when the server wants a client
// certificate, and so on. It returns "" for any other error. The source,
// the restore target and the cluster's servers share it.
func TLSAdvice(err error) string {
	if err == nil {
		return ""
	}
	msg := err.Error()
	for _, p := range tlsProblems {
		for _, s := range p.says {
			if strings.Contains(msg, s) {
				return p.advice
			}
		}
	}
	return ""
}
