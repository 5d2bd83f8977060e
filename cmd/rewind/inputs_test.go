package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/testbin"
)

// secretEnv sets every variable rewind reads to a value holding a secret.
var secretEnv = map[string]string{
	"REWIND_SOURCE":        "mongodb://backup:SECRETpw1@db1:27017/?replicaSet=rs0",
	"REWIND_REPO":          "s3://bucket/p?region=x&X-Amz-Security-Token=SECRETtok2",
	"REWIND_IDENTITY":      "AGE-SECRET-KEY-1SECRETKEY3",
	"REWIND_IDENTITY_FILE": "/etc/rewind/SECRETpath4",
	"REWIND_API_TOKEN":     "SECRETtoken5",
}

// commandPaths lists every command as its words: [], [init], [repo info]...
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	out := [][]string{prefix}
	for _, sub := range c.Commands() {
		out = append(out, commandPaths(sub, append(append([]string{}, prefix...), sub.Name()))...)
	}
	return out
}

// --help of every command, run as a user runs it (the binary) with every
// variable set to a secret, shows the variables' names and never a value.
func TestHelpShowsNoSecret(t *testing.T) {
	bin := testbin.Rewind(t)
	env := os.Environ()
	for k, v := range secretEnv {
		env = append(env, k+"="+v)
	}
	for _, path := range commandPaths(newRootCmd(), nil) {
		cmd := exec.Command(bin, append(path, "--help")...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		name := strings.Join(append([]string{"rewind"}, path...), " ")
		if err != nil {
			t.Fatalf("%s --help: %v\n%s", name, err, out)
		}
		if strings.Contains(string(out), "SECRET") {
			t.Errorf("%s --help shows a secret from the environment:\n%s", name, out)
		}
		for flag, env := range map[string]string{"--repo string": "$REWIND_REPO", "--source string": "$REWIND_SOURCE", "--identity string": "$REWIND_IDENTITY"} {
			if strings.Contains(string(out), flag) && !strings.Contains(string(out), env) {
				t.Errorf("%s --help has %s but does not name %s:\n%s", name, flag, env, out)
			}
		}
	}
}

// A flag whose default comes from the config says so, and its help shows
// no made-up "(default 0s)"; a flag with a real default shows it as it is
// written.
func TestHelpDefaults(t *testing.T) {
	for _, path := range commandPaths(newRootCmd(), nil) {
		code, out, stderr := cli(t, append(path, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d %s", path, code, stderr)
		}
		if strings.Contains(out, "(default 0s)") {
			t.Errorf("rewind %s --help shows (default 0s):\n%s", strings.Join(path, " "), out)
		}
	}
	_, out, _ := cli(t, "agent", "--help")
	if !strings.Contains(out, "default from the config, else 500ms") {
		t.Errorf("agent --help does not give --flush-interval's default:\n%s", out)
	}
	_, out, _ = cli(t, "prune", "--help")
	if !strings.Contains(out, "default from the config, else 7d") || !strings.Contains(out, "(default 1d)") {
		t.Errorf("prune --help defaults:\n%s", out)
	}
}

// An input is the flag if given, else the environment variable, else the
// config file: prune takes its repository from all three.
func TestInputPrecedence(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	missingEnv := filepath.Join(t.TempDir(), "from-env")
	missingFlag := filepath.Join(t.TempDir(), "from-flag")
	cfg := filepath.Join(t.TempDir(), "rewind.yaml")
	os.WriteFile(cfg, []byte("repo: file://"+dir+"\nretention:\n  restore_window: 3d\n"), 0o600)

	t.Setenv("REWIND_REPO", missingEnv)
	code, _, stderr := cli(t, "prune", "--config", cfg, "--dry-run", "--repo", missingFlag)
	wantFailure(t, code, stderr, 10, "no rewind repository at "+missingFlag)
	code, _, stderr = cli(t, "prune", "--config", cfg, "--dry-run")
	wantFailure(t, code, stderr, 10, "no rewind repository at "+missingEnv)
	t.Setenv("REWIND_REPO", "")
	code, out, stderr := cli(t, "prune", "--config", cfg, "--dry-run")
	if code != 0 || !strings.Contains(out, "restore window 3d") {
		t.Fatalf("prune with the repository from the config: exit %d\n%s%s", code, out, stderr)
	}
	// The agent resolves the same way; --check-config says what won.
	srcFile := filepath.Join(t.TempDir(), "agent.yaml")
	os.WriteFile(srcFile, []byte("source: mongodb://from-file/\nrepo: /from-file\n"), 0o600)
	t.Setenv("REWIND_SOURCE", "mongodb://user:pw@from-env/")
	code, out, stderr = cli(t, "agent", "--config", srcFile, "--check-config", "--repo", "/from-flag")
	if code != 0 || !strings.Contains(out, "mongodb://REDACTED@from-env/  from $REWIND_SOURCE") || !strings.Contains(out, "/from-flag") {
		t.Fatalf("agent --check-config: exit %d\n%s%s", code, out, stderr)
	}
}

// --identity exists only on the commands that read encrypted data, and
// there it is loaded: a missing file is bad input (exit 2) with a clear
// error. Elsewhere the flag is unknown (exit 2).
func TestIdentityFlag(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	missing := filepath.Join(t.TempDir(), "no-such-key.txt")
	for _, args := range [][]string{
		{"list", "--repo", dir},
		{"verify", "--repo", dir},
		{"prune", "--repo", dir, "--dry-run"},
		{"restore", "--repo", dir, "--to", "latest", "--dry-run"},
		{"oplog", "--repo", dir},
		{"history", "--repo", dir, "--ns", "d.c", "--id", "1"},
		{"agent", "--source", "mongodb://h/", "--repo", dir, "--check-config"},
	} {
		code, _, stderr := cli(t, append(args, "--identity", missing)...)
		wantFailure(t, code, stderr, 2, missing, "age-keygen", "--identity")
	}
	for _, args := range [][]string{
		{"status", "--repo", dir},
		{"init", "--repo", filepath.Join(t.TempDir(), "r")},
		{"repo", "info", "--repo", dir},
		{"unlock", "--repo", dir},
		{"snapshot", "--repo", dir, "--source", "mongodb://h/"},
	} {
		code, _, stderr := cli(t, append(args, "--identity", missing)...)
		wantFailure(t, code, stderr, 2, "unknown flag: --identity")
	}
}

// REWIND_IDENTITY is the one name, a path or the key itself, read by every
// command that takes --identity; REWIND_IDENTITY_FILE still works, with a
// warning. Without any, an encrypted repository is refused with what to do.
func TestIdentityFromEnvironment(t *testing.T) {
	url, id, keyFile := encryptedRepo(t)
	t.Setenv("REWIND_IDENTITY", "")
	t.Setenv("REWIND_IDENTITY_FILE", "")
	code, _, stderr := cli(t, "list", "--repo", url)
	wantFailure(t, code, stderr, 1, "is encrypted", "--identity FILE or set REWIND_IDENTITY")
	for _, v := range []string{id.String(), keyFile} {
		t.Setenv("REWIND_IDENTITY", v)
		if code, out, stderr := cli(t, "list", "--repo", url); code != 0 || !strings.Contains(out, "empty") {
			t.Fatalf("list with REWIND_IDENTITY: exit %d\n%s%s", code, out, stderr)
		}
	}
	// The warning is logged: run the binary to see its stderr.
	cmd := exec.Command(testbin.Rewind(t), "list", "--repo", url)
	cmd.Env = append(os.Environ(), "REWIND_IDENTITY=", "REWIND_IDENTITY_FILE="+keyFile)
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "REWIND_IDENTITY_FILE is deprecated") || strings.Contains(string(out), "is encrypted") {
		t.Fatalf("list with REWIND_IDENTITY_FILE: %v\n%s", err, out)
	}
}

// encryptedRepo creates an empty encrypted repository with `rewind init`
// and returns it, its identity, and an identity file holding it.
func encryptedRepo(t *testing.T) (url string, id *age.X25519Identity, keyFile string) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	url = filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url, "--recipient", id.Recipient().String()); code != 0 {
		t.Fatal(stderr)
	}
	keyFile = filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return url, id, keyFile
}

// Every duration flag takes the config's forms (7d, 1d12h) and refuses
// negative values; count flags refuse negatives; all are usage errors that
// say what is accepted.
func TestDurationAndCountFlags(t *testing.T) {
	dir, _, _ := retentionRepo(t)
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"prune", "--repo", dir, "--restore-window", "-5m"}, []string{"--restore-window", "negative"}},
		{[]string{"prune", "--repo", dir, "--grace", "-1h"}, []string{"--grace", "negative"}},
		{[]string{"prune", "--repo", dir, "--daily", "-3"}, []string{"--daily", "0 or more"}},
		{[]string{"prune", "--repo", dir, "--monthly", "x"}, []string{"--monthly", "0 or more"}},
		{[]string{"verify", "--repo", dir, "--parallel", "0"}, []string{"--parallel", "1 or more"}},
		{[]string{"snapshot", "--repo", dir, "--wait-timeout", "-1s"}, []string{"--wait-timeout", "negative"}},
		{[]string{"snapshot", "--repo", dir, "--parallel", "-2"}, []string{"--parallel", "1 or more"}},
		{[]string{"agent", "--flush-interval", "-500ms"}, []string{"--flush-interval", "negative"}},
		{[]string{"agent", "--source", "mongodb://h/", "--repo", dir, "--flush-interval", "0s", "--check-config"}, []string{"capture.flush_interval (from --flush-interval) must be positive"}},
	} {
		code, _, stderr := cli(t, tc.args...)
		wantFailure(t, code, stderr, 2, tc.wants...)
	}
	// Days are accepted everywhere a duration is.
	code, out, stderr := cli(t, "prune", "--repo", dir, "--restore-window", "1d12h", "--grace", "7d", "--daily", "0", "--dry-run")
	if code != 0 || !strings.Contains(out, "restore window 1d12h") {
		t.Fatalf("prune with day durations: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = cli(t, "agent", "--source", "mongodb://h/", "--repo", dir, "--flush-interval", "1d", "--check-config")
	if code != 0 {
		t.Fatalf("agent --flush-interval 1d: exit %d\n%s%s", code, out, stderr)
	}
	code, _, stderr = cli(t, "snapshot", "--repo", filepath.Join(t.TempDir(), "none"), "--source", "mongodb://h/", "--wait-timeout", "7d")
	wantFailure(t, code, stderr, 10, "no rewind repository")
}

// A password inside a query value that is itself a URL (an S3 endpoint with
// userinfo), typed as is or percent-encoded, never shows: not in the
// commands' errors or output, not in the logs, text or JSON.
func TestNestedURLSecretNeverShown(t *testing.T) {
	// An S3 endpoint that refuses everything at once (no retries).
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusForbidden)
		_, _ = w.Write([]byte(`<?xml version="1.0"?><Error><Code>AccessDenied</Code><Message>denied</Message></Error>`))
	}))
	defer s3.Close()
	host := strings.TrimPrefix(s3.URL, "http://")
	endpoint := "http://AKIDnested:s3cretrepo@" + host
	bin := testbin.Rewind(t)
	for _, repoURL := range []string{
		"s3://bkt/p?endpoint=" + endpoint + "&region=us-east-1&use_path_style=true",
		"s3://bkt/p?endpoint=" + url.QueryEscape(endpoint) + "&region=us-east-1&use_path_style=true",
	} {
		for _, args := range [][]string{
			{"status"}, {"repo", "info"}, {"unlock"}, {"list"},
			{"snapshot", "--source", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"},
			{"agent", "--source", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", "--api-listen", ""},
			{"--log-format", "json", "agent", "--source", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", "--api-listen", ""},
			{"--log-level", "debug", "agent", "--source", "mongodb://127.0.0.1:1/", "--check-config"},
		} {
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "REWIND_REPO="+repoURL, "AWS_ACCESS_KEY_ID=test-key-id", "AWS_SECRET_ACCESS_KEY=test-secret-key",
				"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
			out, _ := cmd.CombinedOutput()
			name := "rewind " + strings.Join(args, " ")
			if strings.Contains(string(out), "s3cretrepo") || strings.Contains(string(out), "AKIDnested") {
				t.Errorf("%s shows the endpoint's credentials:\n%s", name, out)
			}
			if !strings.Contains(string(out), host) && !strings.Contains(string(out), url.QueryEscape(host)) {
				t.Errorf("%s does not say which endpoint:\n%s", name, out)
			}
		}
	}
}
