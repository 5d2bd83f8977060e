package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"filippo.io/age"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// cli runs rewind in-process and returns its exit code, stdout and stderr.
func cli(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// wantFailure checks a failed command: its exit code and a single line on
// stderr that mentions every one of wants. Warnings before it (a password
// on the command line: REWIND_TEST_MONGODB_URI may hold one) do not count.
func wantFailure(t *testing.T, code int, stderr string, wantCode int, wants ...string) {
	t.Helper()
	stderr = regexp.MustCompile(`(?m)^rewind: warning: .*\n`).ReplaceAllString(stderr, "")
	if code != wantCode {
		t.Fatalf("exit code %d, want %d; stderr: %s", code, wantCode, stderr)
	}
	if lines := strings.Count(strings.TrimRight(stderr, "\n"), "\n") + 1; lines != 1 {
		t.Errorf("want a one-line error, got %d lines:\n%s", lines, stderr)
	}
	for _, w := range wants {
		if !strings.Contains(stderr, w) {
			t.Errorf("error %q does not mention %q", stderr, w)
		}
	}
}

func TestExitCodes(t *testing.T) {
	code, out, _ := cli(t, "version")
	if code != 0 || !strings.HasPrefix(out, "rewind ") {
		t.Fatalf("version: %d %q", code, out)
	}
	code, _, stderr := cli(t, "frobnicate")
	wantFailure(t, code, stderr, 2, "unknown command", "--help")
	code, _, stderr = cli(t, "init", "--no-such-flag")
	wantFailure(t, code, stderr, 2, "unknown flag")
	t.Setenv("REWIND_REPO", "")
	code, _, stderr = cli(t, "repo", "info", "--repo", "")
	wantFailure(t, code, stderr, 2, "--repo is required")
	code, _, stderr = cli(t, "init", "--repo", t.TempDir(), "--compression", "lz4")
	wantFailure(t, code, stderr, 2, "lz4")
}

func TestEveryCommandHasAnExample(t *testing.T) {
	for _, c := range newRootCmd().Commands() {
		if c.Name() == "help" || c.Name() == "completion" {
			continue
		}
		if c.Example == "" {
			t.Errorf("rewind %s --help has no example", c.Name())
		}
		for _, sub := range c.Commands() {
			if sub.Example == "" {
				t.Errorf("rewind %s %s --help has no example", c.Name(), sub.Name())
			}
		}
	}
}

func TestInitAndRepoInfo(t *testing.T) {
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	code, out, stderr := cli(t, "init", "--repo", url)
	if code != 0 || !strings.Contains(out, "created repository") {
		t.Fatalf("init: %d %s %s", code, out, stderr)
	}
	code, out, stderr = cli(t, "repo", "info", "--repo", url)
	if code != 0 || !strings.Contains(out, "format version") || !strings.Contains(out, "zstd") {
		t.Fatalf("repo info: %d %s %s", code, out, stderr)
	}
	code, _, stderr = cli(t, "init", "--repo", url)
	wantFailure(t, code, stderr, 1, "already holds a rewind repository")
	missing := "file://" + filepath.Join(t.TempDir(), "nothing")
	code, _, stderr = cli(t, "repo", "info", "--repo", missing)
	wantFailure(t, code, stderr, 10, "no rewind repository", "rewind init")
}

// --compression picks the zstd level the repository records (fastest by
// default); a value that is not a level is refused as bad input.
func TestInitCompression(t *testing.T) {
	for _, c := range []struct{ flag, want string }{{"", `"zstd_level": "fastest"`},
		{"better", `"zstd_level": "better"`}, {"zstd", `"zstd_level": "fastest"`}, {"none", `"compression": "none"`}} {
		url := "file://" + filepath.Join(t.TempDir(), "repo")
		argv := []string{"init", "--repo", url}
		if c.flag != "" {
			argv = append(argv, "--compression", c.flag)
		}
		if code, _, stderr := cli(t, argv...); code != 0 {
			t.Fatalf("init --compression %q: %s", c.flag, stderr)
		}
		code, out, _ := cli(t, "repo", "info", "--repo", url, "--json")
		if code != 0 || !strings.Contains(out, c.want) {
			t.Fatalf("init --compression %q: repo info --json lacks %s:\n%s", c.flag, c.want, out)
		}
		if c.flag == "none" && strings.Contains(out, "zstd_level") {
			t.Fatalf("init --compression none recorded a level:\n%s", out)
		}
	}
	code, _, stderr := cli(t, "init", "--repo", t.TempDir(), "--compression", "best")
	wantFailure(t, code, stderr, 2, `--compression "best"`, "fastest, default, better", "--help")
}

func TestInitEncrypted(t *testing.T) {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	url := filepath.Join(t.TempDir(), "repo")
	code, _, stderr := cli(t, "init", "--repo", url, "--recipient", id.Recipient().String())
	if code != 0 {
		t.Fatalf("init: %s", stderr)
	}
	code, out, _ := cli(t, "repo", "info", "--repo", url, "--json")
	if code != 0 || !strings.Contains(out, `"encrypted": true`) || !strings.Contains(out, id.Recipient().String()) {
		t.Fatalf("repo info --json: %s", out)
	}
	code, _, stderr = cli(t, "init", "--repo", filepath.Join(t.TempDir(), "r2"), "--recipient", "age1nonsense")
	wantFailure(t, code, stderr, 1, "age public key")
}

func TestAgentCheckConfig(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("source: mongodb://u:secretpw@h/\nrepo: file:///tmp/x\ncapture:\n  flush_interval: 500ms\n"), 0o600)
	code, out, stderr := cli(t, "agent", "--config", good, "--check-config")
	if code != 0 || !strings.Contains(out, "valid") {
		t.Fatalf("check-config: %d %s %s", code, out, stderr)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("source: mongodb://u:secretpw@h/\ncapture:\n  flush_every: 1s\n"), 0o600)
	code, _, stderr = cli(t, "agent", "--config", bad, "--check-config")
	wantFailure(t, code, stderr, 2, "flush_every")
	if strings.Contains(stderr, "secretpw") {
		t.Fatalf("password leaked: %s", stderr)
	}
}

// Bad input to the agent gets a one-line error that says what to do, and
// never shows a password.
func TestAgentBadInput(t *testing.T) {
	srv := testserver.Start(t)
	url := filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	spool := filepath.Join(t.TempDir(), "spool")
	agent := func(source, repoURL string) (int, string) {
		code, _, stderr := cli(t, "agent", "--source", source, "--repo", repoURL, "--spool-dir", spool)
		return code, stderr
	}
	code, stderr := agent("http://127.0.0.1:1/", url)
	wantFailure(t, code, stderr, 2, "source (from --source)", "not a MongoDB connection string")
	code, stderr = agent("mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300", url)
	wantFailure(t, code, stderr, 1, "no server answered", "127.0.0.1:1")
	if !srv.External() {
		wrong := strings.Replace(srv.URI(), "mongodb://", "mongodb://nobody:hunter2@", 1)
		code, stderr = agent(wrong, url)
		wantFailure(t, code, stderr, 1, "authentication failed")
		if strings.Contains(stderr, "hunter2") {
			t.Fatalf("password leaked: %s", stderr)
		}
	}
	code, stderr = agent(srv.URI(), filepath.Join(t.TempDir(), "missing"))
	wantFailure(t, code, stderr, 10, "no rewind repository", "rewind init")

	other := filepath.Join(t.TempDir(), "other")
	ctx := context.Background()
	st, err := storage.Open(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	_, err = repo.Init(ctx, st, repo.InitOptions{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "elsewhere"}})
	if err != nil {
		t.Fatal(err)
	}
	code, stderr = agent(srv.URI(), other)
	wantFailure(t, code, stderr, 1, "repository backs up", "repository of its own")
}

func TestUnlock(t *testing.T) {
	url := filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent"}); err != nil {
		t.Fatal(err)
	}
	code, out, _ := cli(t, "unlock", "--repo", url)
	if code != 0 || !strings.Contains(out, "removed 0 of 1") {
		t.Fatalf("a live lock must survive unlock without --all: %d %s", code, out)
	}
	code, out, _ = cli(t, "unlock", "--repo", url, "--all")
	if code != 0 || !strings.Contains(out, "removed 1 of 1") {
		t.Fatalf("unlock --all: %d %s", code, out)
	}
}

// Malformed input is caught before anything is opened or connected, exits
// 2 (a systemd unit with RestartPreventExitStatus=2 does not restart-loop
// on it) and names the flag, variable or config key; no password shows.
func TestAgentMalformedInput(t *testing.T) {
	dir := t.TempDir()
	repoDir := filepath.Join(dir, "repo")
	file := func(body string) string {
		p := filepath.Join(t.TempDir(), "rewind.yaml")
		if err := os.WriteFile(p, []byte("source: mongodb://u:p4ss@h/\nrepo: "+repoDir+"\n"+body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Setenv("REWIND_SOURCE", "")
	t.Setenv("REWIND_API_TOKEN", "")
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--check-config", "--source", "notmongo://u:p4ss@h1:1/", "--repo", repoDir}, []string{"--source", "not a MongoDB connection string"}},
		{[]string{"--check-config", "--source", "mongodb://u:p4ss@[::1/", "--repo", repoDir}, []string{"--source", "not a MongoDB connection string"}},
		// Not only --check-config: the agent itself refuses before connecting.
		{[]string{"--source", "garbage", "--repo", repoDir}, []string{"--source", "not a MongoDB connection string"}},
		{[]string{"--check-config", "--source", "mongodb://h/", "--repo", "ftp://x/"}, []string{"--repo", "unknown scheme"}},
		{[]string{"--check-config", "--config", file("api:\n  listen: notanaddr\n")}, []string{"api.listen", "notanaddr", "HOST:PORT"}},
		{[]string{"--check-config", "--config", file(""), "--api-listen", "notanaddr"}, []string{"--api-listen", "HOST:PORT"}},
		{[]string{"--check-config", "--config", file("api:\n  token_file: /nonexistent\n")}, []string{"api.token_file", "/nonexistent"}},
		{[]string{"--check-config", "--config", file("api:\n  tls_cert: /nonexistent.crt\n  tls_key: /nonexistent.key\n")}, []string{"api.tls_cert", "/nonexistent.crt"}},
		{[]string{"--check-config", "--config", file("identity: /nonexistent.key\n")}, []string{"`identity:` in the config file", "/nonexistent.key"}},
	} {
		code, out, stderr := cli(t, append([]string{"agent"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, tc.wants...)
		if strings.Contains(stderr+out, "p4ss") {
			t.Errorf("agent %v shows the password: %s", tc.args, stderr)
		}
	}
	// A value from the file is named by its key, not by a flag nobody gave.
	code, _, stderr := cli(t, "agent", "--check-config", "--config", file("log:\n  level: loud\n"))
	wantFailure(t, code, stderr, 2, "log.level \"loud\"")
	if strings.Contains(stderr, "--log-level") {
		t.Errorf("the file's log.level is reported as a flag: %s", stderr)
	}
	// The other commands' inputs: the same checks, the same exit code.
	for _, args := range [][]string{
		{"snapshot", "--repo", repoDir, "--source", "notmongo://u:p4ss@h/"},
		{"init", "--repo", repoDir, "--source", "garbage"},
		{"status", "--repo", "ftp://u:p4ss@x/"},
		{"verify", "--repo", repoDir, "--restore-to", "mongodb://u:p4ss@[::1/"},
	} {
		code, _, stderr := cli(t, args...)
		wantFailure(t, code, stderr, 2, "--help")
		if strings.Contains(stderr, "p4ss") {
			t.Errorf("%v shows the password: %s", args, stderr)
		}
	}
}

// --check-config prints, for the source, the repository and the identity,
// the value without its secrets and where it came from, as the inputs
// resolved them.
func TestAgentCheckConfigSaysWhere(t *testing.T) {
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.txt")
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(keyFile, []byte(id.String()+"\n"), 0o600)
	cfgFile := filepath.Join(dir, "rewind.yaml")
	os.WriteFile(cfgFile, []byte("source: mongodb://u:filepw@from-file/\nrepo: /from-file\nidentity: "+keyFile+"\n"), 0o600)
	t.Setenv("REWIND_IDENTITY", "")
	t.Setenv("REWIND_SOURCE", "mongodb://u:envpw@from-env/")
	code, out, stderr := cli(t, "agent", "--config", cfgFile, "--check-config", "--repo", "/from-flag")
	if code != 0 {
		t.Fatalf("check-config: exit %d\n%s%s", code, out, stderr)
	}
	for _, want := range [][]string{
		{"source", "mongodb://REDACTED@from-env/", "from $REWIND_SOURCE"},
		{"repo", "/from-flag", "from --repo"},
		{"identity", keyFile, "from `identity:` in " + cfgFile},
	} {
		if !regexp.MustCompile(`(?m)^` + strings.Join(quoteAll(want), `\s+`) + `$`).MatchString(out) {
			t.Errorf("check-config does not say %q:\n%s", want, out)
		}
	}
	t.Setenv("REWIND_IDENTITY", id.String())
	_, out, _ = cli(t, "agent", "--config", cfgFile, "--check-config")
	if strings.Contains(out, "envpw") || strings.Contains(out, "filepw") || strings.Contains(out, id.String()) ||
		!strings.Contains(out, "the key itself") || !strings.Contains(out, "from $REWIND_IDENTITY") {
		t.Errorf("check-config with the key in the environment:\n%s", out)
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = regexp.QuoteMeta(s)
	}
	return out
}
