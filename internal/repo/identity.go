package repo

import (
	"fmt"
	"os"
	"strings"

	"filippo.io/age"
)

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
// age-keygen: one AGE-SECRET-KEY-... per line, # comments). Errors name the
// file and say what it must hold; they never hold key material (age's
// errors do not).
func LoadIdentities(path string) ([]age.Identity, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read identity file: %w: give the age identity file (written by age-keygen) of the repository's recipient", err)
	}
	defer f.Close()
	ids, err := age.ParseIdentities(f)
	if err != nil {
		return nil, fmt.Errorf("read identity file %s: %v: it must hold an age identity (AGE-SECRET-KEY-...), as age-keygen writes", path, err)
	}
	return ids, nil
}

// ParseIdentity reads an identity as the CLI and the agent take it (from
// --identity, REWIND_IDENTITY or the config's identity:): the secret key
// itself (AGE-SECRET-KEY-...) or the path of an identity file. An empty v
// gives no identity, which is enough to write an encrypted repository but
// not to read its data.
func ParseIdentity(v string) ([]age.Identity, error) {
	v = strings.TrimSpace(v)
	switch {
	case v == "":
		return nil, nil
	case strings.HasPrefix(v, "AGE-SECRET-KEY-"):
		ids, err := age.ParseIdentities(strings.NewReader(v))
		if err != nil {
			return nil, fmt.Errorf("parse identity: %v: want one AGE-SECRET-KEY-... line, as age-keygen writes", err)
		}
		return ids, nil
	}
	return LoadIdentities(v)
}
