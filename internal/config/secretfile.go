package config

import (
	"fmt"
	"os"
	"strings"
)

// ReadSecretFile reads a secret kept in a file rather than on the command
// line, where every user of the machine can read it in the process list:
// a connection string with a password (source_file, --source-file,
// --target-file). what names the key or flag in messages. One trailing
// newline (LF or CRLF) is removed, nothing else. A file that is missing,
// unreadable or empty is an error that says so. warning is "" unless the
// file's group or other users may read it: the point of the file is that
// only rewind's user reads it, so the caller shows the warning.
func ReadSecretFile(path, what string) (value, warning string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", fmt.Errorf("read %s: %w; write the connection string into that file (readable by rewind's user only: chmod 600)", what, err)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if strings.TrimSpace(s) == "" {
		return "", "", fmt.Errorf("read %s: %s is empty; write the connection string into it", what, path)
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().Perm()&0o044 != 0 {
		warning = fmt.Sprintf("%s %s can be read by other users of this machine (mode %#o): chmod 600 it", what, path, fi.Mode().Perm())
	}
	return s, warning, nil
}
