package cluster

import (
	"fmt"
	"net/url"
	"strings"

	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"

	"github.com/rewind-backup/rewind/internal/redact"
)

// routingOnly are the options of a mongos or config server connection
// string that must not reach a shard's: they name the other deployment or
// a way of reaching it.
var routingOnly = map[string]bool{
	"replicaset":       true,
	"directconnection": true,
	"loadbalanced":     true,
	"srvmaxhosts":      true,
	"srvservicename":   true,
}

// ShardURI builds the connection string of a shard's replica set from the
// one the operator gave for mongos or the config server (base): the same
// user, password and options (authSource, TLS, timeouts...), with the
// members of the shard's host string and its replica set name, as Percona
// Backup for MongoDB and mongodump do. A mongodb+srv:// base becomes a
// mongodb:// URI: its DNS records name the router, not the shard, so the
// options they carry (TLS on, and authSource or replicaSet from the TXT
// record) are written out, which resolves the name once (lookup is the
// driver's; nil means connstring.ParseAndValidate). Errors never show the
// password.
func ShardURI(base, replicaSet string, hosts []string, lookup func(string) (*connstring.ConnString, error)) (string, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") {
		return "", fmt.Errorf("build a shard's connection string from %s: it is not a mongodb:// or mongodb+srv:// URI", redact.URL(base))
	}
	q := u.Query()
	for k := range q {
		if routingOnly[strings.ToLower(k)] {
			q.Del(k)
		}
	}
	if u.Scheme == "mongodb+srv" {
		if lookup == nil {
			lookup = connstring.ParseAndValidate
		}
		cs, err := lookup(base)
		if err != nil {
			return "", fmt.Errorf("resolve %s: %s", redact.URL(base), redact.Error(err, base))
		}
		if !has(q, "tls") && !has(q, "ssl") {
			q.Set("tls", "true") // what +srv implies
		}
		if cs.AuthSourceSet && !has(q, "authSource") {
			q.Set("authSource", cs.AuthSource)
		}
		u.Scheme = "mongodb"
	}
	if replicaSet != "" {
		q.Set("replicaSet", replicaSet)
	}
	u.Host = strings.Join(hosts, ",")
	if u.Path == "" {
		u.Path = "/"
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// has reports whether q sets key, in any case (URI options are
// case-insensitive).
func has(q url.Values, key string) bool {
	for k := range q {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}
