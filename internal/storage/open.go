package storage

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"

	"github.com/rewind-backup/rewind/internal/redact"
)

// Options carries what Open cannot read from the URL. The zero value is
// what production uses: credentials come from each cloud's usual
// environment variables and files, never from flags or the URL.
//
// Tests set the fields to talk to local emulators without touching the
// process environment, so parallel tests with different servers are safe.
type Options struct {
	// AWS, if set, replaces the AWS credential chain for s3:// URLs.
	AWS *AWSCredentials
	// Azure, if set, replaces the environment for azblob:// URLs.
	Azure *AzureSharedKey
	// GCSEmulatorHost, if set, is used for gs:// URLs as
	// STORAGE_EMULATOR_HOST would be ("127.0.0.1:PORT", no scheme):
	// anonymous access to a local emulator.
	GCSEmulatorHost string
}

// AWSCredentials is a static S3 access key.
type AWSCredentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
}

// AzureSharedKey is a storage account name and its shared key.
type AzureSharedKey struct {
	Account string
	Key     string
}

// Open opens the repository store named by rawURL with credentials from the
// environment. Accepted forms:
//
//	/abs/path or rel/path          a local directory (created if missing)
//	file:///abs/path               the same
//	s3://bucket/prefix?region=R&endpoint=URL&use_path_style=true
//	gs://bucket/prefix
//	azblob://container/prefix?protocol=http&domain=HOST:PORT
//
// A path after the bucket is a key prefix: the store only sees keys under it.
func Open(ctx context.Context, rawURL string) (Store, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// OpenWith is Open with explicit options (see Options).
func OpenWith(ctx context.Context, rawURL string, opts Options) (Store, error) {
	st, err := open(ctx, rawURL, opts)
	if err != nil {
		return nil, err
	}
	return counted{st}, nil
}

func open(ctx context.Context, rawURL string, opts Options) (Store, error) {
	u, err := parseURL(rawURL)
	switch {
	case err != nil:
		return nil, err
	case u == nil:
		return openFile(rawURL)
	case u.Scheme == "file":
		return openFile(u.Path)
	}
	return openBlob(ctx, u, opts)
}

// CheckURL checks the form of a repository URL without opening anything
// (no directory is created, no bucket reached): a local path, or a URL of
// a scheme Open knows, in a form it accepts. Its errors are Open's, with no
// secret in them.
func CheckURL(rawURL string) error {
	_, err := parseURL(rawURL)
	return err
}

// Canonical spells the repository location rawURL names one way, so that
// two spellings of one repository compare equal: a local path or file://
// URL becomes file:// and the absolute, clean path; another URL
// scheme://bucket/clean-prefix with its query sorted. A URL Open would
// refuse is returned as it is.
func Canonical(rawURL string) string {
	u, err := parseURL(rawURL)
	switch {
	case err != nil:
		return rawURL
	case u == nil || u.Scheme == "file":
		p := rawURL
		if u != nil {
			p = u.Path
		}
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
		return "file://" + filepath.Clean(p)
	}
	c := url.URL{Scheme: u.Scheme, Host: u.Host, Path: strings.TrimSuffix(path.Clean("/"+u.Path), "/"), RawQuery: u.Query().Encode()}
	return c.String()
}

// parseURL checks a repository URL as Open takes it; nil for a local path.
func parseURL(rawURL string) (*url.URL, error) {
	if rawURL == "" {
		return nil, fmt.Errorf("open repository: the URL is empty: give a directory or a file://, s3://, gs:// or azblob:// URL")
	}
	if !redact.HasScheme(rawURL) {
		return nil, nil
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("open repository %s: parse URL: %s", redact.URL(rawURL), redact.Error(err, rawURL))
	}
	switch u.Scheme {
	case "file":
		return u, checkFileURL(u)
	case "s3", "gs", "azblob":
		if u.User != nil {
			return nil, fmt.Errorf("open repository %s: credentials in the URL are not accepted: remove them and use the cloud's usual environment variables or credential files", redact.URL(rawURL))
		}
		return u, nil
	}
	return nil, fmt.Errorf("open repository %s: unknown scheme %q: use file://, s3://, gs:// or azblob://", redact.URL(rawURL), u.Scheme)
}

func checkFileURL(u *url.URL) error {
	if u.User != nil {
		return fmt.Errorf("open repository %s: file URLs take no user or password: write file:///abs/path", redact.URL(u.String()))
	}
	if u.Host != "" && u.Host != "localhost" {
		return fmt.Errorf("open repository %s: file URLs name a local path: write file:///abs/path", redact.URL(u.String()))
	}
	if u.RawQuery != "" {
		return fmt.Errorf("open repository %s: file URLs take no query parameters", redact.URL(u.String()))
	}
	if u.Path == "" || !strings.HasPrefix(u.Path, "/") {
		return fmt.Errorf("open repository %s: file URLs need an absolute path: write file:///abs/path", redact.URL(u.String()))
	}
	return nil
}
