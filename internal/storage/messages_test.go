package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Open's own errors name the repository without its secrets (package
// redact decides what they are).
func TestOpenErrorsRedacted(t *testing.T) {
	for _, raw := range []string{
		"s3://AKIDLEAK:s3cretLEAK@bucket/p?region=x",
		"azblob://c?sv=2020&sig=s3cretLEAK&domain=x",
		"file://host/p?sig=s3cretLEAK",
		"nope://AKIDLEAK:s3cretLEAK@h/",
		"s3://AKIDLEAK:s3cretLEAK@bucket/%zz",
	} {
		_, err := Open(context.Background(), raw)
		if err == nil {
			t.Fatalf("Open(%q) succeeded", raw)
		}
		for _, leak := range []string{"s3cretLEAK", "AKIDLEAK"} {
			if strings.Contains(err.Error(), leak) {
				t.Errorf("Open error shows %q: %v", leak, err)
			}
		}
	}
}

func TestCompact(t *testing.T) {
	got := compact("GET http://x/y\n-----\nRESPONSE 403: denied\nERROR CODE: AuthorizationFailure\n-----\n<?xml?>\n<Error/>")
	if want := "GET http://x/y RESPONSE 403: denied ERROR CODE: AuthorizationFailure"; got != want {
		t.Errorf("compact = %q, want %q", got, want)
	}
	e := &scrubbedError{msg: "m", err: errors.ErrUnsupported}
	if !errors.Is(e, errors.ErrUnsupported) {
		t.Errorf("scrubbedError hides its cause from errors.Is")
	}
}
