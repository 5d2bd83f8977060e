package export

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rewind-backup/rewind/internal/restore"
)

// Format is an export's output format, as --format names it.
type Format string

// The formats.
const (
	// JSONL is canonical Extended JSON, one document per line: a directory
	// with DB/NAME.jsonl and DB/NAME.metadata.json per collection.
	JSONL Format = "jsonl"
	// BSON is mongodump's directory layout: DB/NAME.bson (the documents,
	// concatenated) and DB/NAME.metadata.json, for `mongorestore --dir`.
	BSON Format = "bson"
	// Archive is one mongodump archive stream, for `mongorestore --archive`.
	Archive Format = "archive"
)

// Stdout is the Out that writes to the caller's stream (Options.Stdout):
// an archive, or the documents of exactly one collection (bson, jsonl).
const Stdout = "-"

// Request is an export as a user asks for it: the flags of `rewind export`
// fill it, and Validate checks it once. Prepare reads To and Include;
// Prepared.Write reads the rest.
type Request struct {
	To      restore.When // --to, from restore.ParseWhen; required
	Include []string     // --ns patterns (db, db.*, db.coll); empty: everything
	Format  Format       // --format; required
	// Out is the directory (jsonl, bson) or file (archive) to create, or
	// Stdout. A directory must be new or empty; an archive file must be
	// new or empty, unless Force.
	Out   string
	Force bool // replace an existing archive file
}

func invalid(field, format string, args ...any) *restore.InvalidError {
	return &restore.InvalidError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// ParseFormat reads --format. Errors are *restore.InvalidError.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case JSONL, BSON, Archive:
		return f, nil
	case "":
		return "", invalid("format", "is required: jsonl, bson or archive")
	}
	return "", invalid("format", "%q: want jsonl (Extended JSON lines), bson (mongodump's directory) or archive (mongodump --archive)", s)
}

// Validate checks the request before anything is read: every error is a
// *restore.InvalidError naming the field (the CLI's usage error, exit 2).
// The output is checked again when it is created.
func (r *Request) Validate() error {
	if r.To.IsZero() {
		return invalid("to", "is required: latest, an RFC 3339 time (2026-11-25T09:30:00Z) or an oplog timestamp SECONDS:INCREMENT")
	}
	if _, err := ParseFormat(string(r.Format)); err != nil {
		return err
	}
	if _, err := restore.NewMapper(r.Include, nil); err != nil {
		return err
	}
	return r.checkOut()
}

// checkOut refuses an output that would overwrite something: a non-empty
// directory always (an export never deletes what it did not write), a
// non-empty file unless Force.
func (r *Request) checkOut() error {
	switch {
	case r.Out == "":
		return invalid("out", "is required: a directory to create (jsonl, bson), a file (archive), or - for standard output")
	case r.Out == Stdout:
		return nil
	}
	r.Out = filepath.Clean(r.Out) // "dump/" is the directory dump
	fi, err := os.Stat(r.Out)
	if os.IsNotExist(err) {
		parent := filepath.Dir(r.Out)
		if pi, err := os.Stat(parent); err != nil || !pi.IsDir() {
			return invalid("out", "%s: its directory %s does not exist: create it first", r.Out, parent)
		}
		return nil
	}
	if err != nil {
		return invalid("out", "%s: %v", r.Out, err)
	}
	if r.Format == Archive {
		if fi.IsDir() {
			return invalid("out", "%s is a directory: an archive is one file; give a file path, or - for standard output", r.Out)
		}
		if fi.Size() > 0 && !r.Force {
			return invalid("out", "%s exists: add --force to replace it, or give another file", r.Out)
		}
		return nil
	}
	if !fi.IsDir() {
		return invalid("out", "%s is a file: --format %s writes a directory; give a new or empty directory", r.Out, r.Format)
	}
	entries, err := os.ReadDir(r.Out)
	if err != nil {
		return invalid("out", "%s: %v", r.Out, err)
	}
	if len(entries) > 0 {
		return invalid("out", "%s is not empty: give a new or empty directory (an export never deletes files it did not write; --force replaces only an archive file)", r.Out)
	}
	return nil
}
