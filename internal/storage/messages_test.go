package storage

import (
	"context"
	"errors"
	"strings"
	"testing"
)

// Open's own errors name the repository without its secrets (package
// redact decides what they are). No azblob:// URL here: gocloud reads the
// AZURE_STORAGE_* variables once per process, at the first azblob:// open
// through its default opener, so opening one here without them would leave
// TestCloudFromEnvironment's opens in this process without an account. The
// SAS signature's redaction is covered by package redact and TestCloudErrors.
func TestOpenErrorsRedacted(t *testing.T) {
	for _, raw := range []string{
		"s3://AKIDLEAK:s3cretLEAK@bucket/p?region=x",
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
