package config

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/rewind-backup/rewind/internal/redact"
)

// named is how a message names key: with the flag or variable that gave
// its value, from Origins ("api.listen (from --api-listen)"), else as the
// config file spells it (a bad value nobody overrode is the file's: the
// defaults are valid).
func (c Config) named(key string) string {
	if o := c.Origins[key]; o != "" {
		return key + " (from " + o + ")"
	}
	return key
}

// CheckMongoURI checks that uri is a MongoDB connection string the official
// driver accepts (its own parser and validation), without connecting. For
// mongodb+srv:// the driver's parser would look the SRV and TXT records up:
// a name server that does not answer is not bad input, so the same text is
// checked as mongodb://, with SRV's own rules (one host, no port, no direct
// connection) checked here. The error never shows the password.
func CheckMongoURI(uri string) error {
	probe, srv, err := withoutSRV(uri)
	if err == nil {
		var cs *connstring.ConnString
		cs, err = connstring.ParseAndValidate(probe)
		if err == nil && srv && cs.DirectConnection {
			err = errors.New("a direct connection cannot be made to a mongodb+srv:// URI")
		}
		if err == nil {
			if ferr := checkTLSFiles(cs); ferr != nil {
				return fmt.Errorf("%s: %w", redact.URL(uri), ferr)
			}
		}
	}
	if err == nil {
		return nil
	}
	shown := "the value"
	if redact.HasScheme(uri) {
		shown = redact.URL(uri)
	}
	return fmt.Errorf("%s is not a MongoDB connection string (%s): write mongodb://HOST:PORT/?replicaSet=NAME or mongodb+srv://HOST/",
		shown, redact.Error(err, uri))
}

// checkTLSFiles checks that the files the URI's tls* options name can be
// read, before anything connects: the driver reads them only then, and a
// path typed wrong is bad input, not a failure of the run.
func checkTLSFiles(cs *connstring.ConnString) error {
	for _, f := range []struct{ option, path, want string }{
		{"tlsCAFile", cs.SSLCaFile, "the PEM file of the CA that signed the server's certificate"},
		{"tlsCertificateKeyFile", cs.SSLClientCertificateKeyFile, "one PEM file with the client certificate and its key"},
	} {
		if f.path == "" {
			continue
		}
		fh, err := os.Open(f.path)
		if err != nil {
			return fmt.Errorf("%s cannot be read (%v): give %s", f.option, err, f.want)
		}
		fh.Close()
	}
	return nil
}

// withoutSRV turns a mongodb+srv:// URI into the mongodb:// URI the
// driver's parser checks without DNS, and checks SRV's host rule.
func withoutSRV(uri string) (probe string, srv bool, err error) {
	rest, ok := strings.CutPrefix(uri, "mongodb+srv://")
	if !ok {
		return uri, false, nil
	}
	hosts := rest
	if i := strings.IndexAny(hosts, "/?"); i >= 0 {
		hosts = hosts[:i]
	}
	if at := strings.LastIndex(hosts, "@"); at >= 0 {
		hosts = hosts[at+1:]
	}
	if hosts == "" || strings.Contains(hosts, ",") {
		return "", true, errors.New("a mongodb+srv:// URI names exactly one host")
	}
	if _, _, err := net.SplitHostPort(hosts); err == nil {
		return "", true, errors.New("a mongodb+srv:// URI takes no port")
	}
	if base, q, ok := strings.Cut(rest, "?"); ok {
		var keep []string
		for _, kv := range strings.Split(q, "&") {
			k, _, _ := strings.Cut(kv, "=")
			if !strings.EqualFold(k, "srvMaxHosts") && !strings.EqualFold(k, "srvServiceName") {
				keep = append(keep, kv)
			}
		}
		rest = base
		if len(keep) > 0 {
			rest += "?" + strings.Join(keep, "&")
		}
	}
	return "mongodb://" + rest, true, nil
}

// checkListen accepts HOST:PORT with a numeric port ("127.0.0.1:7070",
// ":7070", "[::1]:0").
func checkListen(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err == nil {
		if n, perr := strconv.Atoi(port); perr != nil || n < 0 || n > 65535 {
			err = fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	}
	if err != nil {
		return fmt.Errorf("%q is not HOST:PORT (%v): write e.g. 127.0.0.1:7070, 127.0.0.1:0 for a free port, or \"\" to turn the API off", addr, err)
	}
	return nil
}

// ReadToken returns the API's bearer token: api.token, else the contents
// of api.token_file (surrounding white space trimmed), else "" (no token).
// A token file that cannot be read or is empty is an error.
func (a API) ReadToken() (string, error) {
	if a.Token != "" || a.TokenFile == "" {
		return a.Token.Reveal(), nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("read api.token_file: %w: write the token into that file, or set api.token or REWIND_API_TOKEN", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("api.token_file %s is empty: write the token into it", a.TokenFile)
	}
	return tok, nil
}

// validateAPI checks the API's address, and that its token file and TLS
// files can be read, when the API is on.
func (c Config) validateAPI() []error {
	a := c.API
	var errs []error
	if a.Token != "" && a.TokenFile != "" {
		errs = append(errs, errors.New("set api.token or api.token_file, not both"))
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, errors.New("api.tls_cert and api.tls_key go together: set both, for HTTPS, or neither"))
	}
	if a.Listen == "" {
		return errs // the API is off: nothing else of it is used
	}
	if err := checkListen(a.Listen); err != nil {
		errs = append(errs, fmt.Errorf("%s %w", c.named("api.listen"), err))
	}
	if _, err := a.ReadToken(); err != nil {
		errs = append(errs, err)
	}
	if a.TLSCert != "" && a.TLSKey != "" {
		if _, err := tls.LoadX509KeyPair(a.TLSCert, a.TLSKey); err != nil {
			errs = append(errs, fmt.Errorf("api.tls_cert %s and api.tls_key %s: %v: give a PEM certificate and its private key", a.TLSCert, a.TLSKey, err))
		}
	}
	return errs
}

// validateLog checks log.format and log.level.
func (c Config) validateLog() []error {
	var errs []error
	switch c.Log.Format {
	case "text", "json":
	default:
		errs = append(errs, fmt.Errorf("%s %q is not text or json", c.named("log.format"), c.Log.Format))
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.Log.Level)); err != nil {
		errs = append(errs, fmt.Errorf("%s %q is not one of debug, info, warn, error", c.named("log.level"), c.Log.Level))
	}
	return errs
}
