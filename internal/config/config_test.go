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

func TestEnvOverridesFile(t *testing.T) {
	t.Setenv("REWIND_SOURCE", "mongodb://env:secret@h/")
	p := writeConfig(t, "source: mongodb://file@h/\n")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Source.Reveal() != "mongodb://env:secret@h/" {
		t.Errorf("source = %q, want the environment's", cfg.Source.Reveal())
	}
}

func TestValidateNamesEveryProblem(t *testing.T) {
	cfg := Default()
	cfg.Capture.FlushInterval = 0
	err := cfg.Validate()
	for _, want := range []string{"source is not set", "repo is not set", "flush_interval"} {
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
		if !strings.Contains(out, "admin") {
			t.Errorf("redaction lost the user name, which helps debugging: %s", out)
		}
	}
	tok := Secret("s3cr3t-token")
	if strings.Contains(fmt.Sprint(tok), "s3cr3t") {
		t.Fatal("token leaked")
	}
}

func TestDurationDays(t *testing.T) {
	for in, want := range map[string]time.Duration{"7d": 7 * 24 * time.Hour, "90s": 90 * time.Second, "0d": 0} {
		d, err := ParseDuration(in)
		if err != nil || d.Std() != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	for _, bad := range []string{"", "d", "-1d", "1.5d", "week"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}
