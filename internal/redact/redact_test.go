package redact

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		// Local paths and URLs without secrets stay as typed.
		{"/var/lib/rewind", "/var/lib/rewind"},
		{"file:///var/lib/rewind", "file:///var/lib/rewind"},
		{"s3://bucket/p?endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://bucket/p?endpoint=http://127.0.0.1:9000&use_path_style=true"},
		{"mongodb://db1:27017,db2:27017/?replicaSet=rs0", "mongodb://db1:27017,db2:27017/?replicaSet=rs0"},
		// The whole userinfo goes: the S3 user part is the access key id,
		// a lone one may be a token.
		{"mongodb://backup:hunter2@db.example:27017/?authSource=admin", "mongodb://REDACTED@db.example:27017/?authSource=admin"},
		{"s3://AKID:SECRET@bucket/p?region=x", "s3://REDACTED@bucket/p?region=x"},
		{"https://ghp_token123@host/x", "https://REDACTED@host/x"},
		// Query values that carry secrets, in place, in any case.
		{"azblob://c?sv=2020&sig=abc%2Fdef&domain=x", "azblob://c?sv=2020&sig=REDACTED&domain=x"},
		{"s3://b?X-Amz-Signature=abc&X-Amz-Security-Token=tok&X-Amz-Credential=AK%2F1", "s3://b?X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED&X-Amz-Credential=REDACTED"},
		{"gs://b?access_token=abc", "gs://b?access_token=REDACTED"},
		{"mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:FQoG", "mongodb://h/?authMechanism=MONGODB-AWS&authMechanismProperties=REDACTED"},
		{"mongodb://h/?tls=true&tlsCertificateKeyFilePassword=pw123", "mongodb://h/?tls=true&tlsCertificateKeyFilePassword=REDACTED"},
		// A secret typed with an unescaped '&' goes whole, up to the next
		// NAME=VALUE; every tls file option stays.
		{"mongodb://h/?tlsCAFile=%2Fca.pem&tlsCertificateKeyFilePassword=kp&=%/tail9&x&tlsCertificateKeyFile=/c.pem",
			"mongodb://h/?tlsCAFile=%2Fca.pem&tlsCertificateKeyFilePassword=REDACTED&REDACTED&REDACTED&tlsCertificateKeyFile=/c.pem"},
		// A query value that is itself a URL follows the same rule, typed
		// as is or percent-encoded (re-encoded then).
		{"s3://bkt/p?endpoint=http://akid:s3cretrepo@127.0.0.1:1&region=us-east-1", "s3://bkt/p?endpoint=http://REDACTED@127.0.0.1:1&region=us-east-1"},
		{"s3://bkt?endpoint=http%3A%2F%2Fakid%3As3cretrepo%40127.0.0.1%3A1&region=x", "s3://bkt?endpoint=http%3A%2F%2FREDACTED%40127.0.0.1%3A1&region=x"},
		{"s3://bkt?endpoint=http://127.0.0.1:1/?X-Amz-Signature=s3cretsig", "s3://bkt?endpoint=http://127.0.0.1:1/?X-Amz-Signature=REDACTED"},
		{"s3://bkt?endpoint=http://akid:s3%2Fcret@h:1", "s3://bkt?endpoint=" + Unparsable},
		// Unparsable: hidden whole.
		{"mongodb://u:p@ss@h:bad port/", Unparsable},
	} {
		if got := URL(tc.in); got != tc.want {
			t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// Scrub removes exactly what URL hides, as typed and decoded, from a
// message that quotes it, and leaves harmless text alone.
func TestScrub(t *testing.T) {
	raw := "s3://user:pa%2Fss@b?sig=sEcReT%2B1&region=r"
	msg := Scrub("failed: user:pa/ss sEcReT+1 sEcReT%2B1 region=r pa%2Fss", Secrets(raw)...)
	for _, leak := range []string{"user", "pa/ss", "pa%2Fss", "sEcReT"} {
		if strings.Contains(msg, leak) {
			t.Errorf("Scrub left %q in %q", leak, msg)
		}
	}
	for _, keep := range []string{"region=r", "failed: "} {
		if !strings.Contains(msg, keep) {
			t.Errorf("Scrub removed harmless text %q: %q", keep, msg)
		}
	}
	// A URL that does not parse still gives up its password.
	err := errors.New(`parse "mongodb://backup:hunter2@db1:27017 bad": invalid character`)
	if got := Error(err, "mongodb://backup:hunter2@db1:27017 bad"); strings.Contains(got, "hunter2") {
		t.Errorf("Error left the password: %q", got)
	}
	// The same secret with an unescaped '&', quoted whole by a parser.
	raw = "mongodb://h/?tlsCertificateKeyFilePassword=kp&=%/tail9&tls=true"
	if got := Error(errors.New(`invalid option "=%/tail9" in kp&=%/tail9`), raw); strings.Contains(got, "tail9") || strings.Contains(got, "kp&") {
		t.Errorf("Error left the rest of the password: %q", got)
	}
	if got := Scrub("a abc b", "abc"); got != "a abc b" {
		t.Errorf("Scrub replaced a 3-byte secret: %q", got)
	}
}

// A password in a query value that is a URL is scrubbed from messages in
// every form the message may quote it: as typed, decoded, re-encoded.
func TestScrubNestedURL(t *testing.T) {
	for _, tc := range []struct{ raw, pass, user string }{
		{"s3://bkt/p?endpoint=http://akid:s3cretrepo@127.0.0.1:1&region=us-east-1", "s3cretrepo", "akid"},
		{"s3://bkt/p?endpoint=http%3A%2F%2Fakid%3As3cretrepo%40127.0.0.1%3A1&region=us-east-1", "s3cretrepo", "akid"},
		{"s3://bkt/p?region=us-east-1&endpoint=http://akid:s3cret%2540repo@127.0.0.1:1", "s3cret@repo", "akid"},
	} {
		// What an SDK's error may quote: the endpoint as it parsed it,
		// its userinfo decoded and encoded.
		quoted := strings.ReplaceAll(tc.user+":"+tc.pass, "@", "%40")
		sdk := fmt.Errorf(`operation error S3: HeadBucket: Get "http://%s@127.0.0.1:1/bkt": dial tcp; password %s; endpoint %s`,
			quoted, tc.pass, url.QueryEscape("http://"+tc.user+":"+tc.pass+"@127.0.0.1:1"))
		got := Error(sdk, tc.raw) + " " + URL(tc.raw)
		for _, leak := range []string{"s3cret", tc.user} {
			if strings.Contains(got, leak) {
				t.Errorf("%s: %q left in %q", tc.raw, leak, got)
			}
		}
		if !strings.Contains(got, "127.0.0.1") {
			t.Errorf("%s: the endpoint's host is gone: %q", tc.raw, got)
		}
	}
}

// A password typed unescaped, with '@' and '/' in it, is scrubbed from a
// parser's error however little of it the error quotes.
func TestScrubUnescapedPassword(t *testing.T) {
	raw := "mongodb://u:p@ss:SecretTail/rd@127.0.0.1:27101/"
	msg := Scrub(`invalid host "": port must be an integer: strconv.Atoi: parsing "SecretTail": invalid syntax; userinfo p@ss:SecretTail/rd`, Secrets(raw)...)
	if strings.Contains(msg, "SecretTail") || strings.Contains(msg, "ss:Secret") {
		t.Fatalf("scrubbed: %s", msg)
	}
}
