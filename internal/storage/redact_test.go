package storage

import (
	"errors"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"/var/lib/rewind", "/var/lib/rewind"},
		{"file:///var/lib/rewind", "file:///var/lib/rewind"},
		{"s3://bucket/p?endpoint=http://127.0.0.1:9000&use_path_style=true", "s3://bucket/p?endpoint=http://127.0.0.1:9000&use_path_style=true"},
		{"s3://AKID:SECRET@bucket/p?region=x", "s3://REDACTED@bucket/p?region=x"},
		{"azblob://c?sv=2020&sig=abc%2Fdef&domain=x", "azblob://c?sv=2020&sig=REDACTED&domain=x"},
		{"s3://b?X-Amz-Signature=abc&X-Amz-Security-Token=tok", "s3://b?X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		{"gs://b?access_token=abc", "gs://b?access_token=REDACTED"},
	} {
		if got := Redact(tc.in); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestScrubAndCompact(t *testing.T) {
	secrets := secretsOf("s3://user:pa%2Fss@b?sig=sEcReT%2B1&region=r")
	msg := scrub("failed: user:pa/ss sEcReT+1 sEcReT%2B1 region=r", secrets)
	for _, leak := range []string{"pa/ss", "sEcReT"} {
		if strings.Contains(msg, leak) {
			t.Errorf("scrub left %q in %q", leak, msg)
		}
	}
	if !strings.Contains(msg, "region=r") {
		t.Errorf("scrub removed harmless text: %q", msg)
	}
	got := compact("GET http://x/y\n-----\nRESPONSE 403: denied\nERROR CODE: AuthorizationFailure\n-----\n<?xml?>\n<Error/>")
	if want := "GET http://x/y RESPONSE 403: denied ERROR CODE: AuthorizationFailure"; got != want {
		t.Errorf("compact = %q, want %q", got, want)
	}
	e := &scrubbedError{msg: "m", err: errors.ErrUnsupported}
	if !errors.Is(e, errors.ErrUnsupported) {
		t.Errorf("scrubbedError hides its cause from errors.Is")
	}
}
