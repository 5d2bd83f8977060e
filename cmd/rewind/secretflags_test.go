package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A password given in a flag is visible to every user in the process list:
// each such flag gets one warning line, which shows the value redacted
// and says where to put it instead; a flag without one gets none.
func TestPasswordInAFlagWarns(t *testing.T) {
	t.Setenv("REWIND_SOURCE", "")
	t.Setenv("REWIND_IDENTITY", "")
	for _, tc := range []struct {
		args  []string
		warns []string
	}{
		{[]string{"--source", "mongodb://u:hunter2pw@db1/"}, []string{"rewind: warning: --source holds a password (mongodb://REDACTED@db1/)", "process list", "--source-file FILE instead"}},
		{[]string{"--config-server", "mongodb://u:hunter2pw@cfg1/", "--shard", "a=mongodb://u:hunter2pw@a1/"},
			[]string{"--config-server holds a password (mongodb://REDACTED@cfg1/)", "$REWIND_CONFIG_SERVER", "--shard holds a password (mongodb://REDACTED@a1/)", "shards:"}},
		{[]string{"--source", "mongodb://db1/"}, nil},
	} {
		args := append([]string{"agent", "--check-config", "--repo", "/r"}, tc.args...)
		code, out, stderr := cli(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", tc.args, code, out, stderr)
		}
		if strings.Contains(stderr+out, "hunter2pw") {
			t.Errorf("%v: the password shows:\n%s%s", tc.args, out, stderr)
		}
		if n := strings.Count(stderr, "rewind: warning:"); n != strings.Count(strings.Join(tc.args, " "), "hunter2pw") {
			t.Errorf("%v: %d warnings:\n%s", tc.args, n, stderr)
		}
		for _, w := range tc.warns {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: the warning lacks %q:\n%s", tc.args, w, stderr)
			}
		}
	}
	_, _, stderr := cli(t, "agent", "--check-config", "--repo", "/r", "--log-format", "json", "--source", "mongodb://u:hunter2pw@db1/")
	if !regexp.MustCompile(`^\{"time":"[^"]+","level":"WARN","msg":"--source holds a password`).MatchString(stderr) {
		t.Errorf("with --log-format json the warning is not a JSON log line:\n%s", stderr)
	}
}

// --source-file (and source_file: in the config) read the connection
// string from a file, one trailing newline trimmed; a missing or empty
// file, or both the flag and the file, are usage errors; a file others
// can read is warned about.
func TestSourceFile(t *testing.T) {
	t.Setenv("REWIND_SOURCE", "")
	t.Setenv("REWIND_IDENTITY", "")
	dir := t.TempDir()
	file := filepath.Join(dir, "source")
	if err := os.WriteFile(file, []byte("mongodb://u:filepw1@db1:27017/?replicaSet=rs0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "agent", "--check-config", "--repo", "/r", "--source-file", file)
	if code != 0 || stderr != "" || !regexp.MustCompile(`(?m)^source\s+mongodb://REDACTED@db1:27017/\?replicaSet=rs0\s+from --source-file$`).MatchString(out) {
		t.Fatalf("--source-file: exit %d\n%s%s", code, out, stderr)
	}
	cfgFile := filepath.Join(dir, "rewind.yaml")
	os.WriteFile(cfgFile, []byte("source_file: "+file+"\nrepo: /r\n"), 0o600)
	code, out, stderr = cli(t, "agent", "--check-config", "--config", cfgFile)
	if code != 0 || !strings.Contains(out, "mongodb://REDACTED@db1:27017/?replicaSet=rs0") || strings.Contains(out+stderr, "filepw1") {
		t.Fatalf("source_file: exit %d\n%s%s", code, out, stderr)
	}

	os.Chmod(file, 0o644)
	code, _, stderr = cli(t, "agent", "--check-config", "--repo", "/r", "--source-file", file)
	if code != 0 || !strings.Contains(stderr, "rewind: warning: --source-file "+file+" can be read by other users of this machine (mode 0644): chmod 600 it") {
		t.Errorf("a file others can read: exit %d\n%s", code, stderr)
	}

	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, []byte("\n"), 0o600)
	both := filepath.Join(dir, "both.yaml")
	os.WriteFile(both, []byte("source: mongodb://db1/\nsource_file: "+file+"\n"), 0o600)
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--source-file", filepath.Join(dir, "nope")}, []string{"read --source-file", "no such file", "chmod 600"}},
		{[]string{"--source-file", empty}, []string{"read --source-file", "is empty"}},
		{[]string{"--source-file", file, "--source", "mongodb://db1/"}, []string{"give --source or --source-file, not both"}},
		{[]string{"--config", both}, []string{"set source or source_file, not both"}},
	} {
		code, _, stderr := cli(t, append([]string{"agent", "--check-config", "--repo", "/r"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, tc.wants...)
	}
}

// Every flag that takes a connection string has a --FLAG-file twin, read
// before anything else: a missing file or both given are usage errors,
// and the file's value is what the command uses (here a malformed one,
// refused naming the flag).
func TestFileFlags(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad")
	os.WriteFile(bad, []byte("mongodb://u:filepw2@db1:notaport/\n"), 0o600)
	repo := filepath.Join(dir, "repo")
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"restore", "--repo", repo, "--to", "latest"}, "target"},
		{[]string{"undo", "--repo", repo, "--from", "1764063000:1", "--to", "latest", "--ns", "a"}, "target"},
		{[]string{"verify", "--repo", repo}, "restore-to"},
		{[]string{"drill", "--repo", repo}, "scratch"},
		{[]string{"checksum"}, "uri"},
	} {
		code, _, stderr := cli(t, append(tc.args, "--"+tc.flag+"-file", filepath.Join(dir, "nope"))...)
		wantFailure(t, code, stderr, 2, "read --"+tc.flag+"-file", "no such file")
		code, _, stderr = cli(t, append(tc.args, "--"+tc.flag+"-file", bad, "--"+tc.flag, "mongodb://db1/")...)
		wantFailure(t, code, stderr, 2, "give --"+tc.flag+" or --"+tc.flag+"-file, not both")
		code, _, stderr = cli(t, append(tc.args, "--"+tc.flag+"-file", bad)...)
		if code != 2 || !strings.Contains(stderr, "--"+tc.flag) || strings.Contains(stderr, "filepw2") {
			t.Errorf("%s --%s-file holding a malformed URI: exit %d: %s", tc.args[0], tc.flag, code, stderr)
		}
	}
}
