package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rewind-backup/rewind/internal/redact"
)

// Duration is a time.Duration that also accepts days ("7d", "1d12h"), since
// retention is spoken of in days. It is the one duration type of rewind: the
// YAML config, every command-line flag (it implements pflag.Value) and the
// API's duration fields all parse through ParseDuration, so every place
// accepts the same forms and refuses negative values.
type Duration time.Duration

// ParseDuration reads Go durations ("90s", "1h30m"), days ("7d") and days
// followed by a Go duration ("1d12h"). Negative values are refused: no
// duration in rewind means "in the past". Errors name the input and an
// example of what is accepted.
func ParseDuration(s string) (Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return 0, fmt.Errorf("duration %q: must not be negative", in)
	}
	var days time.Duration
	if d, rest, ok := strings.Cut(s, "d"); ok {
		n, err := strconv.Atoi(d)
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("duration %q: want a value like 1s, 5m, 6h, 7d or 1d12h", in)
		}
		days, s = time.Duration(n)*24*time.Hour, rest
		if s == "" {
			return Duration(days), nil
		}
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("duration %q: want a value like 1s, 5m, 6h, 7d or 1d12h", in)
	}
	return Duration(days + v), nil
}

// Set implements pflag.Value, so a flag parses exactly as the config does.
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Type implements pflag.Value; it names the value in --help.
func (d *Duration) Type() string { return "duration" }

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*d = v
	return nil
}

// Std returns the value as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats the value as ParseDuration reads it back, shortest first:
// whole days as "Nd", the rest as Go does without its zero units ("1d12h",
// "7d", "1h30m", "1m30s", "500ms", "0s").
func (d Duration) String() string {
	const day = 24 * time.Hour
	v := time.Duration(d)
	days, rest := v/day, v%day
	if v < 0 || days == 0 {
		return short(v)
	}
	if rest == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%s", days, short(rest))
}

// short is time.Duration's String without trailing zero units: "12h"
// for "12h0m0s", "2m" for "2m0s".
func short(v time.Duration) string {
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Secret holds a value that must never be printed: a connection string with a
// password, an API token. Formatting it, logging it or marshalling it shows a
// redacted form; Reveal gives the value to the code that needs it.
type Secret string

// Reveal returns the secret itself.
func (s Secret) Reveal() string { return string(s) }

// String redacts: a URI shows without its secrets (redact.URL: the
// password and secret query values become REDACTED), any other value
// vanishes whole.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	if strings.Contains(string(s), "://") {
		return redact.URL(string(s))
	}
	return "[redacted]"
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML output).
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// WebhookURL is a webhook's address. It is a secret too, and a stricter one
// than Secret: services such as Slack put the token in the path, so it
// prints as its scheme and host only.
type WebhookURL string

// Reveal returns the URL itself.
func (u WebhookURL) Reveal() string { return string(u) }

// String shows the scheme and host only: "https://hooks.slack.com/[redacted]".
func (u WebhookURL) String() string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(string(u))
	if err != nil || p.Host == "" {
		return "[redacted]"
	}
	return p.Scheme + "://" + p.Host + "/[redacted]"
}

// LogValue implements slog.LogValuer.
func (u WebhookURL) LogValue() slog.Value { return slog.StringValue(u.String()) }

// MarshalText implements encoding.TextMarshaler (JSON, YAML output).
func (u WebhookURL) MarshalText() ([]byte, error) { return []byte(u.String()), nil }

// check accepts an absolute http or https URL.
func (u WebhookURL) check() error {
	p, err := url.Parse(string(u))
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return fmt.Errorf("%s is not an http:// or https:// URL", u)
	}
	return nil
}

// StatePath is where rewind keeps local state on this host:
// $XDG_STATE_HOME/rewind/elem... (default ~/.local/state/rewind/...).
func StatePath(elem ...string) string {
	base := os.Getenv("XDG_STATE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = os.TempDir()
		}
		base = filepath.Join(home, ".local", "state")
	}
	return filepath.Join(append([]string{base, "rewind"}, elem...)...)
}
