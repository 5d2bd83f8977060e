package storage

import (
	"net/url"
	"slices"
	"strings"
)

// sensitiveParams are query parameters that can carry a secret: S3
// presigned or inline keys and Azure SAS tokens. Their values never appear in
// an error or log.
var sensitiveParams = map[string]bool{
	"sig": true, "signature": true, "x-amz-signature": true,
	"x-amz-credential": true, "x-amz-security-token": true,
	"awsaccesskeyid": true, "access_key": true, "access_key_id": true,
	"secret_key": true, "secret_access_key": true, "secret": true,
	"session_token": true, "token": true, "password": true, "key": true,
	"sas": true, "sas_token": true, "account_key": true, "accountkey": true,
	"sharedaccesssignature": true, "credential": true, "credentials": true,
}

// Redact returns rawURL with userinfo and secret-bearing query values
// replaced by "REDACTED", for errors and logs. An unparsable URL is replaced
// whole, since its secrets cannot be located.
func Redact(rawURL string) string {
	if !hasScheme(rawURL) {
		return rawURL
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return "<unparsable URL>"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.RawQuery != "" {
		// Rewrite in place rather than re-encode, so the URL stays as
		// the user typed it.
		parts := strings.Split(u.RawQuery, "&")
		for i, kv := range parts {
			k, _, _ := strings.Cut(kv, "=")
			if uk, err := url.QueryUnescape(k); err == nil && isSensitiveParam(uk) {
				parts[i] = k + "=REDACTED"
			}
		}
		u.RawQuery = strings.Join(parts, "&")
	}
	return u.String()
}

func isSensitiveParam(k string) bool {
	k = strings.ToLower(k)
	if sensitiveParams[k] {
		return true
	}
	// Azure SAS tokens pasted as a query: sv, ss, srt, sp, se, st, spr and
	// sig; sig alone is the secret, but the rest mark a SAS URL.
	return strings.Contains(k, "secret") || strings.Contains(k, "password") || strings.Contains(k, "token")
}

// redactErr formats err with every secret of rawURL removed: url.Parse and
// SDK errors quote the URL they were given.
func redactErr(err error, rawURL string) string {
	return scrub(err.Error(), secretsOf(rawURL))
}

// scrub removes every secret from msg, in both raw and URL-escaped forms,
// longest first so that a secret containing another goes whole.
func scrub(msg string, secrets []string) string {
	secrets = slices.Clone(secrets)
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, s := range secrets {
		if len(s) < 4 {
			continue // too short to replace without mangling the message
		}
		msg = strings.ReplaceAll(msg, s, "REDACTED")
		msg = strings.ReplaceAll(msg, url.QueryEscape(s), "REDACTED")
	}
	return msg
}

func secretsOf(rawURL string) []string {
	var out []string
	// Userinfo between "://" and "@" even if the URL doesn't parse.
	if i := strings.Index(rawURL, "://"); i >= 0 {
		rest := rawURL[i+3:]
		if j := strings.IndexAny(rest, "/?#"); j >= 0 {
			rest = rest[:j]
		}
		if at := strings.LastIndex(rest, "@"); at >= 0 {
			ui := rest[:at]
			out = append(out, ui)
			user, pass, _ := strings.Cut(ui, ":")
			for _, v := range []string{user, pass} {
				out = append(out, v)
				if dv, err := url.PathUnescape(v); err == nil {
					out = append(out, dv)
				}
			}
		}
	}
	if _, q, ok := strings.Cut(rawURL, "?"); ok {
		for _, kv := range strings.Split(q, "&") {
			k, v, _ := strings.Cut(kv, "=")
			if isSensitiveParam(k) && v != "" {
				out = append(out, v)
				if dv, err := url.QueryUnescape(v); err == nil {
					out = append(out, dv)
				}
			}
		}
	}
	return out
}

// compact turns a multi-line SDK error (Azure's carry the response body)
// into one line: the lines before the first separator or XML body.
func compact(msg string) string {
	if !strings.Contains(msg, "\n") {
		return msg
	}
	var keep []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "<") {
			break
		}
		if line == "" || strings.HasPrefix(line, "---") {
			continue
		}
		keep = append(keep, line)
	}
	return strings.Join(keep, " ")
}
