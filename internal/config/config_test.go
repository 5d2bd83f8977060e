package config

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rewind.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadDefaultsAndOverrides(t *testing.T) {
	p := writeConfig(t, "source: mongodb://u:pw@h:27017/\nrepo: file:///tmp/r\ncapture:\n  flush_interval: 250ms\nretention:\n  restore_window: 3d\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Capture.FlushInterval.Std(); got != 250*time.Millisecond {
		t.Errorf("flush_interval = %v, want 250ms", got)
	}
	if got := cfg.Capture.MaxSegmentBytes; got != 16<<20 {
		t.Errorf("max_segment_bytes default = %d, want %d", got, 16<<20)
	}
	if got := cfg.Retention.RestoreWindow.Std(); got != 72*time.Hour {
		t.Errorf("restore_window = %v, want 72h", got)
	}
	if err := cfg.Validate(); err != nil {
		t.Errorf("valid config refused: %v", err)
	}
}

func TestLoadRefusesUnknownKeys(t *testing.T) {
	p := writeConfig(t, "repo: file:///tmp/r\ncapture:\n  flush_intervall: 1s\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "flush_intervall") {
		t.Fatalf("want an error naming the unknown key, got %v", err)
	}
}

func TestLoadRefusesBadDuration(t *testing.T) {
	p := writeConfig(t, "capture:\n  flush_interval: soon\n")
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "soon") {
		t.Fatalf("want an error naming the bad value, got %v", err)
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Capture.FlushInterval = 0
	cfg.Capture.HeartbeatInterval = Duration(-time.Second)
	err := cfg.Validate()
	for _, want := range []string{"source is not set", "repo is not set", "flush_interval", "capture.heartbeat_interval must be more than 0"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := Secret("mongodb://admin:hunter2@db.example:27017/?authSource=admin")
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("connecting", "source", s)
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %s", s, s), buf.String()} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret leaked: %s", out)
		}
		if !strings.Contains(out, "db.example:27017") {
			t.Errorf("redaction lost the host, which helps debugging: %s", out)
		}
	}
	tok := Secret("s3cr3t-token")
	if strings.Contains(fmt.Sprint(tok), "s3cr3t") {
		t.Fatal("token leaked")
	}
}

// A Secret URI hides what every other place hides (one redactor): MongoDB's
// AWS session token and TLS key password, S3 and Azure signatures, the
// user part of the userinfo.
func TestSecretHidesWhatStorageHides(t *testing.T) {
	for _, uri := range []string{
		"mongodb://db/?authMechanism=MONGODB-AWS&authMechanismProperties=AWS_SESSION_TOKEN:LEAKtok",
		"mongodb://db/?tls=true&tlsCertificateKeyFilePassword=LEAKpw",
		"s3://bucket/p?X-Amz-Security-Token=LEAKtok&region=x",
		"azblob://c?sv=2020&sas_token=LEAKsas",
		"mongodb://LEAKuser:pw@db/",
	} {
		if got := Secret(uri).String(); strings.Contains(got, "LEAK") {
			t.Errorf("Secret(%q) shows %q", uri, got)
		}
	}
}

func TestDurationDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "90s": 90 * time.Second, "0d": 0,
		"1d12h": 36 * time.Hour, " 5m ": 5 * time.Minute, "0s": 0} {
		d, err := ParseDuration(in)
		if err != nil || d.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "week", "-5m", "-1h", "1d-1h", "1dd"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
	if _, err := ParseDuration("-5m"); err == nil || !strings.Contains(err.Error(), "negative") {
		t.Errorf("ParseDuration(-5m) = %v; want an error saying negative", err)
	}
}

// A duration prints as it is written in the config, and reads back the same.
func TestDurationString(t *testing.T) {
	for in, want := range map[string]string{"1d12h": "1d12h", "36h": "1d12h", "7d": "7d", "90s": "1m30s", "1h30m": "1h30m",
		"2m": "2m", "12h": "12h", "500ms": "500ms", "0s": "0s", "1d1s": "1d1s", "10m": "10m", "1d0h30m": "1d30m"} {
		d, err := ParseDuration(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.String(); got != want {
			t.Errorf("ParseDuration(%q).String() = %q, want %q", in, got, want)
		}
		if back, err := ParseDuration(d.String()); err != nil || back != d {
			t.Errorf("%q does not read back: %v, %v", d.String(), back, err)
		}
	}
}

// TestDurationFlag checks that a flag of this type parses as the config does.
func TestDurationFlag(t *testing.T) {
	var d Duration
	if err := d.Set("7d"); err != nil || d.Std() != 7*24*time.Hour {
		t.Fatalf("Set(7d) = %v, %v", d, err)
	}
	if err := d.Set("-1h"); err == nil {
		t.Fatal("Set(-1h) accepted")
	}
	if d.Std() != 7*24*time.Hour {
		t.Fatalf("a refused Set changed the value to %v", d)
	}
	if d.Type() != "duration" {
		t.Fatalf("Type() = %q", d.Type())
	}
}

func TestAlertsConfig(t *testing.T) {
	p := writeConfig(t, `alerts:
  lag_above: 30s
  oplog_window_below: 0s
  webhooks:
    - url: https://hooks.slack.com/services/T0/B0/tok3n
      format: slack
    - url: http://127.0.0.1:9000/rewind
      headers: {Authorization: "Bearer hunter2"}
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	a := cfg.Alerts
	if a.LagAbove.Std() != 30*time.Second || a.OplogWindowBelow != 0 {
		t.Errorf("lag_above %v, oplog_window_below %v: want the file's values", a.LagAbove, a.OplogWindowBelow)
	}
	if a.CheckInterval.Std() != 15*time.Second || a.StorageErrorsFor.Std() != 5*time.Minute || a.SpoolAbovePercent != 80 {
		t.Errorf("defaults lost: %+v", a)
	}
	if len(a.Webhooks) != 2 || a.Webhooks[0].Format != WebhookSlack || a.Webhooks[1].Headers["Authorization"].Reveal() != "Bearer hunter2" {
		t.Fatalf("webhooks = %+v", a.Webhooks)
	}
	cfg.Source, cfg.Repo = "mongodb://h/", "file:///tmp/r"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("valid alerts refused: %v", err)
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("alerts", "hooks", a.Webhooks, "url", a.Webhooks[0].URL)
	for _, out := range []string{buf.String(), fmt.Sprintf("%v %+v", a, a.Webhooks)} {
		if strings.Contains(out, "tok3n") || strings.Contains(out, "hunter2") {
			t.Fatalf("webhook secret leaked: %s", out)
		}
	}
	if got := a.Webhooks[0].URL.String(); got != "https://hooks.slack.com/[redacted]" {
		t.Errorf("redacted url = %q", got)
	}
}

func TestAlertsValidate(t *testing.T) {
	cfg := Default()
	cfg.Source, cfg.Repo = "mongodb://h/", "file:///tmp/r"
	cfg.Alerts.CheckInterval = 0
	cfg.Alerts.LagAbove = -1
	cfg.Alerts.SpoolAbovePercent = 120
	cfg.Alerts.Webhooks = []Webhook{{URL: "ftp://x/secret-path", Format: "xml"}, {URL: "http://h/", Headers: map[string]Secret{"Bad Name": "v"}}}
	err := cfg.Validate()
	for _, want := range []string{"check_interval", "lag_above", "spool_above_percent 120", "webhooks[0].url", "webhooks[0].format \"xml\"", "webhooks[1].headers"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "secret-path") {
		t.Errorf("the error shows the webhook's path: %v", err)
	}
}

// Malformed input is refused by Validate, before anything is opened or
// connected, with its key (and the flag or variable that gave it) named and
// no password shown; well-formed input passes, mongodb+srv:// without any
// DNS lookup (a .invalid name never resolves).
func TestValidateRefusesMalformedInput(t *testing.T) {
	dir := t.TempDir()
	tokenFile, emptyFile := filepath.Join(dir, "token"), filepath.Join(dir, "empty")
	os.WriteFile(tokenFile, []byte("s3cr3t-token\n"), 0o600)
	os.WriteFile(emptyFile, nil, 0o600)
	valid := func() Config {
		c := Default()
		c.Source, c.Repo = "mongodb://backup:p4ssword@db1:27017,db2:27017/?replicaSet=rs0", "s3://bkt/p?region=x"
		return c
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		wants []string // "" for valid
	}{
		{"valid", func(c *Config) {}, nil},
		{"srv without DNS", func(c *Config) {
			c.Source = "mongodb+srv://u:p4ssword@cluster0.example.invalid/?srvMaxHosts=2&authSource=admin"
		}, nil},
		{"token file", func(c *Config) { c.API.TokenFile = tokenFile }, nil},
		{"api off ignores its files", func(c *Config) { c.API.Listen, c.API.TokenFile = "", "/nonexistent" }, nil},
		{"other scheme", func(c *Config) { c.Source = "notmongo://u:p4ssword@h1:1/" }, []string{"source", "notmongo://REDACTED@h1:1/", "mongodb://HOST:PORT"}},
		{"bad host", func(c *Config) { c.Source = "mongodb://u:p4ssword@[::1/" }, []string{"source", "not a MongoDB connection string"}},
		{"no scheme", func(c *Config) { c.Source = "garbage" }, []string{"source", "not a MongoDB connection string"}},
		{"bad option", func(c *Config) { c.Source = "mongodb://u:p4ssword@h/?w=0&journal=true" }, []string{"source", "w=0 and j=true"}},
		{"srv port", func(c *Config) { c.Source = "mongodb+srv://u:p4ssword@h1:27017/" }, []string{"source", "no port"}},
		{"srv hosts", func(c *Config) { c.Source = "mongodb+srv://u:p4ssword@h1,h2/" }, []string{"source", "one host"}},
		{"srv direct", func(c *Config) { c.Source = "mongodb+srv://u:p4ssword@h1.example.invalid/?directConnection=true" }, []string{"source", "direct connection"}},
		{"from flag", func(c *Config) { c.Source, c.Origins = "notmongo://h/", map[string]string{"source": "--source"} }, []string{"source (from --source)"}},
		{"repo scheme", func(c *Config) { c.Repo = "ftp://u:p4ssword@host/x" }, []string{"repo", "unknown scheme", "file://, s3://"}},
		{"listen", func(c *Config) { c.API.Listen = "notanaddr" }, []string{"api.listen", "notanaddr", "HOST:PORT"}},
		{"listen port", func(c *Config) { c.API.Listen = "127.0.0.1:99999" }, []string{"api.listen", "0 to 65535"}},
		{"listen flag", func(c *Config) { c.API.Listen, c.Origins = "x", map[string]string{"api.listen": "--api-listen"} }, []string{"api.listen (from --api-listen)"}},
		{"token file missing", func(c *Config) { c.API.TokenFile = "/nonexistent/token" }, []string{"api.token_file", "/nonexistent/token"}},
		{"token file empty", func(c *Config) { c.API.TokenFile = emptyFile }, []string{"api.token_file", "empty"}},
		{"tls files", func(c *Config) { c.API.TLSCert, c.API.TLSKey = "/nonexistent/crt", tokenFile }, []string{"api.tls_cert", "/nonexistent/crt"}},
		{"log level", func(c *Config) { c.Log.Level = "loud" }, []string{"log.level", "loud"}},
		{"log level flag", func(c *Config) { c.Log.Level, c.Origins = "loud", map[string]string{"log.level": "--log-level"} }, []string{"log.level (from --log-level)"}},
	} {
		c := valid()
		tc.edit(&c)
		err := c.Validate()
		if len(tc.wants) == 0 {
			if err != nil {
				t.Errorf("%s: valid input refused: %v", tc.name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: accepted", tc.name)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q does not say %q", tc.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "p4ssword") || strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: a secret shows: %v", tc.name, err)
		}
	}
}

// drills: is checked only when drills are on: a scratch that is a MongoDB
// URI and not the source, known points; its password never shows.
func TestDrillsValidate(t *testing.T) {
	valid := func() Config {
		c := Default()
		c.Source, c.Repo = "mongodb://db1:27017/?replicaSet=rs0", "file:///var/lib/rewind"
		return c
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		wants []string // nil: valid
	}{
		{"off by default", func(c *Config) {}, nil},
		{"on", func(c *Config) {
			c.Drills.Every, c.Drills.Scratch = Duration(24*time.Hour), "mongodb://u:s3cr3t@scratch:27017/"
		}, nil},
		{"no scratch", func(c *Config) { c.Drills.Every = Duration(time.Hour) }, []string{"drills.scratch is not set"}},
		{"scratch is the source", func(c *Config) { c.Drills.Every, c.Drills.Scratch = Duration(time.Hour), c.Source },
			[]string{"drills.scratch is the source"}},
		{"bad scratch, bad point, bad ns", func(c *Config) {
			c.Drills.Every, c.Drills.Scratch = Duration(time.Hour), "http://u:s3cr3t@scratch/"
			c.Drills.Points, c.Drills.NS = []string{"latest", "yesterday"}, []string{".x"}
		}, []string{"drills.scratch", `"yesterday" is not latest or random`, `drills.ns: ".x"`}},
		{"negative", func(c *Config) { c.Drills.Every = Duration(-time.Second) }, []string{"drills.every must not be negative"}},
	} {
		c := valid()
		tc.edit(&c)
		err := c.Validate()
		if tc.wants == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		for _, w := range tc.wants {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Validate() = %v, want it to mention %q", tc.name, err, w)
			}
		}
		if err != nil && strings.Contains(err.Error(), "s3cr3t") {
			t.Errorf("%s: the scratch's password leaked: %v", tc.name, err)
		}
	}
}
