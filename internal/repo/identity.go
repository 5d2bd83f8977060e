package repo

import (
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

// IdentityEnv is the environment variable that holds an age identity, or the
// path of a file of identities, when --identity is not given.
const IdentityEnv = "REWIND_IDENTITY"

// ParseRecipient parses an age public key ("age1..." or "age1pq1...").
func ParseRecipient(s string) (age.Recipient, error) {
	rs, err := age.ParseRecipients(strings.NewReader(strings.TrimSpace(s)))
	if err != nil {
		return nil, fmt.Errorf("parse recipient: %v: give an age public key (age1...), as printed by `age-keygen -y`: %w", err, ErrInvalid)
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("parse recipient: want one public key, got %d: %w", len(rs), ErrInvalid)
	}
	return rs[0], nil
}

// LoadIdentities reads age identities from a file (the format written by
// age-keygen: one AGE-SECRET-KEY-... per line, # comments).
func LoadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open identity file: %w", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		// age never puts key material in its errors.
		return nil, fmt.Errorf("read identity file %s: %v", path, err)
	}
	return ids, nil
}

// ParseIdentityValue reads the value of REWIND_IDENTITY: either the secret
// key itself (AGE-SECRET-KEY-...) or the path of an identity file.
func ParseIdentityValue(v string) ([]age.Identity, error) {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "AGE-SECRET-KEY-") {
		ids, err := age.ParseIdentities(strings.NewReader(v))
		if err != nil {
			return nil, fmt.Errorf("parse %s: %v", IdentityEnv, err)
		}
		return ids, nil
	}
	return LoadIdentities(v)
}

// ResolveIdentities returns the identities from the --identity flag value
// (a file path) if set, else from REWIND_IDENTITY, else nil (no identity:
// enough to write, not to read encrypted objects).
func ResolveIdentities(flagPath string) ([]age.Identity, error) {
	if flagPath != "" {
		return LoadIdentities(flagPath)
	}
	if v := os.Getenv(IdentityEnv); v != "" {
		return ParseIdentityValue(v)
	}
	return nil, nil
}
