package storage

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// maxKeyLen bounds a key so that it fits every backend: S3 and Azure cap
// object names at 1024 bytes, GCS at 1024 bytes of UTF-8.
const maxKeyLen = 1024

// maxSegmentLen is the longest name most file systems accept for one path
// component.
const maxSegmentLen = 255

// tempPrefix starts the name of every file the file backend is still
// writing. Keys may not use it, so a listing can skip temp files safely.
const tempPrefix = ".rewind-tmp-"

// ValidateKey reports whether key is a name every backend can store
// unchanged. The rules are the same for every backend so a repository can be
// copied from one store to another: a key is valid UTF-8 of at most 1024
// bytes, made of "/"-separated non-empty segments of at most 255 bytes, none
// of them "." or ".." or starting with the file backend's temp prefix; it
// never starts or ends with "/", and holds no "..", NUL, backslash or other
// control character.
//
// One rule cannot be checked from the key alone: no key may also be the
// "directory" of another ("a" and "a/b"). The file backend, and S3 servers
// that keep objects as files, cannot hold both.
func ValidateKey(key string) error {
	if msg := checkKey(key); msg != "" {
		return fmt.Errorf("invalid key %q: %s", key, msg)
	}
	return nil
}

func checkKey(key string) string {
	switch {
	case key == "":
		return "key is empty"
	case len(key) > maxKeyLen:
		return fmt.Sprintf("key is longer than %d bytes", maxKeyLen)
	case !utf8.ValidString(key):
		return "key is not valid UTF-8"
	case strings.HasPrefix(key, "/"):
		return `key starts with "/"`
	case strings.HasSuffix(key, "/"):
		return `key ends with "/"`
	case strings.Contains(key, ".."):
		return `key contains ".."`
	}
	for _, r := range key {
		if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r < 0xa0) {
			return fmt.Sprintf("key contains the character %U", r)
		}
	}
	for _, seg := range strings.Split(key, "/") {
		switch {
		case seg == "":
			return `key contains an empty segment ("//")`
		case seg == ".":
			return `key contains a "." segment`
		case len(seg) > maxSegmentLen:
			return fmt.Sprintf("a key segment is longer than %d bytes", maxSegmentLen)
		case strings.HasPrefix(seg, tempPrefix):
			return fmt.Sprintf("a key segment starts with the reserved prefix %q", tempPrefix)
		}
	}
	return ""
}

// validatePrefix checks a List prefix: empty (everything) or a string that
// could start a valid key.
func validatePrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	// A prefix may end with "/" or in the middle of a segment; check it as
	// the key it would start by appending one safe character.
	if msg := checkKey(prefix + "x"); msg != "" {
		return fmt.Errorf("invalid list prefix %q: %s", prefix, msg)
	}
	return nil
}
