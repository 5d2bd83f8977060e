package cluster

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A shard's connection string, built from the operator's, keeps every tls*
// option and the x.509 mechanism as given, so the driver connects to each
// shard with the same CA and client certificate (the files are real: the
// driver loads them); shown, it hides the key's password. FerretDB cannot
// authenticate with MONGODB-X509, so this is where that form is covered.
func TestShardURIKeepsTLSOptions(t *testing.T) {
	certs := testserver.NewCerts(t)
	tlsOpts := map[string]string{
		"tls":                           "true",
		"tlsCAFile":                     certs.CAFile,
		"tlsCertificateKeyFile":         certs.ClientFile,
		"tlsCertificateKeyFilePassword": certs.ClientPassword,
		"tlsAllowInvalidHostnames":      "true",
		"authMechanism":                 "MONGODB-X509",
		"authSource":                    "$external",
	}
	base := "mongodb://mongos1:27017/?directConnection=true"
	for k, v := range tlsOpts {
		base += "&" + k + "=" + url.QueryEscape(v)
	}
	shard, err := ShardURI(base, "shard01", []string{"h1:27018", "h2:27018"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(shard)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	for k, v := range tlsOpts {
		if q.Get(k) != v {
			t.Errorf("shard URI has %s=%q, want %q", k, q.Get(k), v)
		}
	}

	opts := options.Client().ApplyURI(shard)
	if err := opts.Validate(); err != nil {
		t.Fatalf("the driver refuses the shard URI: %s", redact.Error(err, shard))
	}
	if opts.TLSConfig == nil || len(opts.TLSConfig.Certificates) != 1 || opts.TLSConfig.RootCAs == nil {
		t.Fatalf("the driver's TLS config from the shard URI lacks the client certificate or the CA (set: %v)", opts.TLSConfig != nil)
	}
	if opts.Auth == nil || opts.Auth.AuthMechanism != "MONGODB-X509" || opts.Auth.AuthSource != "$external" {
		t.Fatalf("the driver's credential %+v is not MONGODB-X509 on $external", opts.Auth)
	}

	shown := redact.URL(shard)
	scrubbed := redact.Error(errors.New("connect to "+shard+": failed"), shard)
	for _, s := range []string{shown, scrubbed} {
		if strings.Contains(s, certs.ClientPassword) || strings.Contains(s, url.QueryEscape(certs.ClientPassword)) {
			t.Errorf("the key password shows in %s", s)
		}
		if !strings.Contains(s, "tlsCertificateKeyFile=") || !strings.Contains(s, "tlsCAFile=") {
			t.Errorf("%s lost the file options a user needs to see", s)
		}
	}
}
