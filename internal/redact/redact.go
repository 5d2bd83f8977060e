// Package redact owns the one rule that keeps credentials out of messages:
// which parts of a URL are secret, how a URL is shown without them, and how
// a message that may quote them (a driver's or an SDK's error) is cleaned.
// config.Secret, the storage backends, the source connection, the alert
// webhooks and the CLI all redact through it, so they hide the same things.
//
// The rule: the whole userinfo is secret (the password, and the user part
// too: for S3 it is the access key id, alone it may be a token as in
// `https://TOKEN@host`). In the query, the values of the parameters in
// sensitiveParams, and of any whose name contains one of sensitiveWords,
// are secret; a value that is itself a URL (an S3 `endpoint=http://...`)
// follows the same rule, typed as is or percent-encoded. Hosts, paths and
// every other parameter stay, since they are what a user needs to see
// which server or bucket a message is about.
package redact

import (
	"net/url"
	"slices"
	"strings"
)

// Mask replaces every secret.
const Mask = "REDACTED"

// Unparsable replaces a whole URL whose secrets cannot be located.
const Unparsable = "[unparsable URL redacted]"

// sensitiveParams are query parameters that carry a secret: MongoDB's
// (authMechanismProperties holds AWS_SESSION_TOKEN), S3 presigned and
// inline keys, GCS signed URLs, Azure SAS tokens and account keys.
var sensitiveParams = map[string]bool{
	"authmechanismproperties": true, "key": true, "sig": true, "sas": true, "awsaccesskeyid": true,
	"access_key": true, "access_key_id": true, "account_key": true, "accountkey": true,
}

// sensitiveWords mark a parameter as secret wherever they appear in its
// name (tlsCertificateKeyFilePassword, X-Amz-Signature, X-Amz-Credential,
// X-Amz-Security-Token, X-Goog-Signature, secret_access_key, access_token,
// sharedaccesssignature...).
var sensitiveWords = []string{"password", "secret", "token", "signature", "credential"}

// IsSensitiveParam reports whether the values of the query parameter named
// k (in any case) are secret.
func IsSensitiveParam(k string) bool {
	k = strings.ToLower(k)
	if sensitiveParams[k] {
		return true
	}
	for _, w := range sensitiveWords {
		if strings.Contains(k, w) {
			return true
		}
	}
	return false
}

// HasScheme tells a URL from a local path: "scheme://..." with a scheme of
// at least two letters (so "C:/x" stays a path).
func HasScheme(s string) bool {
	i := strings.Index(s, "://")
	if i < 2 {
		return false
	}
	for _, r := range s[:i] {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '+' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// URL returns raw with its secrets replaced by Mask, for messages and logs:
// "mongodb://REDACTED@db1:27017/?authSource=admin". The rest stays
// as typed (the query is edited in place, not re-encoded). A string without
// "scheme://" is a local path and is returned unchanged; a URL that does not
// parse is replaced whole by Unparsable.
func URL(raw string) string {
	if !HasScheme(raw) {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return Unparsable
	}
	if u.User != nil {
		u.User = url.User(Mask)
	}
	if u.RawQuery != "" {
		parts := strings.Split(u.RawQuery, "&")
		secret := secretParts(parts)
		for i, kv := range parts {
			k, v, _ := strings.Cut(kv, "=")
			switch {
			case secret[i] && isOption(kv):
				parts[i] = k + "=" + Mask
			case secret[i]:
				parts[i] = Mask
			default:
				if nv, ok := nestedURL(v); ok {
					parts[i] = k + "=" + nv
				}
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

// secretParts marks the query's "&"-separated parts that hold a secret: a
// sensitive parameter, and the parts after it that are no option of their
// own (no "NAME=") — the rest of a secret typed with an unescaped "&", as
// in tlsCertificateKeyFilePassword=p&ss, which would otherwise show "ss".
func secretParts(parts []string) []bool {
	secret := make([]bool, len(parts))
	inSecret := false
	for i, kv := range parts {
		k, _, _ := strings.Cut(kv, "=")
		uk, err := url.QueryUnescape(k)
		switch {
		case err == nil && isOption(kv) && IsSensitiveParam(uk):
			inSecret = true
		case inSecret && !isOption(kv):
		default:
			inSecret = false
		}
		secret[i] = inSecret
	}
	return secret
}

// isOption reports whether a query part looks like NAME=VALUE with a name
// of letters, digits, '_', '-', '.' and percent-escapes, as every URI
// option is named.
func isOption(kv string) bool {
	k, _, ok := strings.Cut(kv, "=")
	if !ok || k == "" {
		return false
	}
	for _, r := range k {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.' || r == '%') {
			return false
		}
	}
	return true
}

// nestedURL redacts a query value that is itself a URL, such as S3's
// endpoint=http://KEY:SECRET@host: it returns the value redacted by URL,
// percent-encoded again if it was, and false when there is nothing to hide.
func nestedURL(v string) (string, bool) {
	dv, err := url.QueryUnescape(v)
	if err != nil || !HasScheme(dv) {
		return "", false
	}
	red := URL(dv)
	switch {
	case red == dv:
		return "", false
	case dv != v && red != Unparsable:
		return url.QueryEscape(red), true
	}
	return red, true
}

// Secrets returns the secret parts of raw as URL decides them, both as
// typed and decoded, for Scrub. It works on the text, so a URL that does not
// parse still gives up its password.
func Secrets(raw string) []string {
	var out []string
	add := func(v string, unescape func(string) (string, error)) {
		if v == "" {
			return
		}
		out = append(out, v)
		if dv, err := unescape(v); err == nil && dv != v {
			out = append(out, dv)
		}
	}
	if i := strings.Index(raw, "://"); i >= 0 {
		rest := raw[i+3:]
		if j := strings.IndexAny(rest, "?#"); j >= 0 {
			rest = rest[:j]
		}
		// The userinfo ends at the last '@' of the authority; a password
		// typed unescaped may hold '/' and '@' itself, so the last '@'
		// before the query counts too, and so do the pieces of such a
		// password (a parser's error may quote just one of them).
		authority := rest
		if j := strings.Index(rest, "/"); j >= 0 {
			authority = rest[:j]
		}
		for _, part := range []string{authority, rest} {
			at := strings.LastIndex(part, "@")
			if at < 0 {
				continue
			}
			userinfo := part[:at]
			add(userinfo, url.PathUnescape)
			user, pass, _ := strings.Cut(userinfo, ":")
			add(user, url.PathUnescape)
			add(pass, url.PathUnescape)
			for _, piece := range strings.FieldsFunc(pass, func(r rune) bool { return r == ':' || r == '@' || r == '/' }) {
				if len(piece) >= 4 && piece != pass {
					add(piece, url.PathUnescape)
				}
			}
		}
	}
	if _, q, ok := strings.Cut(raw, "?"); ok {
		q, _, _ = strings.Cut(q, "#")
		parts := strings.Split(q, "&")
		secret := secretParts(parts)
		for i, kv := range parts {
			_, v, _ := strings.Cut(kv, "=")
			switch {
			case secret[i] && isOption(kv):
				// The value, and with an unescaped '&' in it the whole of it.
				whole := v
				for j := i + 1; j < len(parts) && secret[j] && !isOption(parts[j]); j++ {
					whole += "&" + parts[j]
				}
				add(v, url.QueryUnescape)
				if whole != v {
					add(whole, url.QueryUnescape)
				}
			case secret[i]:
				add(kv, url.QueryUnescape)
			default:
				// A URL in the query (endpoint=http://KEY:SECRET@host), as
				// typed and decoded.
				dv, _ := url.QueryUnescape(v)
				for _, nv := range []string{v, dv} {
					if HasScheme(nv) {
						out = append(out, Secrets(nv)...)
					}
				}
			}
		}
	}
	return out
}

// minSecret is the shortest secret Scrub replaces: shorter ones are not
// plausible credentials, and replacing them would mangle the message.
const minSecret = 4

// Scrub returns msg with every secret replaced by Mask, as given and
// URL-escaped, longest first so that a secret containing another goes
// whole.
func Scrub(msg string, secrets ...string) string {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if len(s) < minSecret {
			continue
		}
		msg = strings.ReplaceAll(msg, s, Mask)
		msg = strings.ReplaceAll(msg, url.QueryEscape(s), Mask)
	}
	return msg
}

// Error returns err's message with the secrets of raw removed: url.Parse,
// drivers and SDKs quote the URL, or parts of it, in their errors.
func Error(err error, raw string) string {
	return Scrub(err.Error(), Secrets(raw)...)
}
