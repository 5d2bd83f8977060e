package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// rewind server refuses a missing or wrong file with exit 2, every problem
// named (its deployment, its key) and no password shown; --check-config
// says how many deployments a valid file declares.
func TestServerConfigErrors(t *testing.T) {
	const pw = "s3cr3tpw"
	dir := t.TempDir()
	file := func(body string) string {
		p := filepath.Join(dir, "s.yaml")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	src := "mongodb://u:" + pw + "@db1:27017/?replicaSet=rs0"
	for _, tc := range []struct {
		name, body string
		wants      []string
	}{
		{"a duplicate name", "deployments:\n  - {name: a, source: '" + src + "', repo: " + dir + "/a}\n  - {name: a, source: '" + src + "', repo: " + dir + "/b}\n",
			[]string{`deployment "a" is declared twice`}},
		{"one repository twice", "deployments:\n  - {name: a, source: '" + src + "', repo: " + dir + "/a}\n  - {name: b, source: '" + src + "', repo: " + dir + "/a}\n",
			[]string{`deployments "a" and "b" have the same repo`}},
		{"a server key in a deployment", "deployments:\n  - {name: a, source: '" + src + "', repo: " + dir + "/a, api: {listen: ':1'}}\n",
			[]string{"deployments[0] (line 2)", "api: is the server's"}},
		{"a negative duration", "deployments:\n  - {name: a, source: '" + src + "', repo: " + dir + "/a, retention: {restore_window: -1d}}\n",
			[]string{"deployments[0] (line 2)", `duration "-1d": must not be negative`}},
		{"no source", "deployments:\n  - {name: a, repo: " + dir + "/a}\n", []string{"deployments[0]", "source is not set"}},
		{"a bad name", "deployments:\n  - {name: 'a/b', source: '" + src + "', repo: " + dir + "/a}\n", []string{"name:"}},
		{"source at the top level", "source: '" + src + "'\n", []string{"belong to each entry of deployments:"}},
		{"an unknown key", "deployment: []\n", []string{"deployment is not a known key"}},
		{"lock timings", "lock: {refresh: 10s, stale_after: 15s}\n", []string{"lock.stale_after 15s must be at least twice lock.refresh 10s"}},
	} {
		code, _, stderr := cli(t, "server", "--config", file(tc.body), "--check-config")
		if code != 2 {
			t.Errorf("%s: exit %d, want 2; stderr: %s", tc.name, code, stderr)
		}
		for _, w := range tc.wants {
			if !strings.Contains(stderr, w) {
				t.Errorf("%s: stderr does not say %q: %s", tc.name, w, stderr)
			}
		}
		if strings.Contains(stderr, pw) {
			t.Errorf("%s: the password shows: %s", tc.name, stderr)
		}
	}
	code, _, stderr := cli(t, "server")
	wantFailure(t, code, stderr, 2, "--config FILE is required")
	code, out, stderr := cli(t, "server", "--config", file("deployments:\n  - {name: a, source: '"+src+"', repo: "+dir+"/a}\n"), "--check-config")
	if code != 0 || !strings.Contains(out, "configuration is valid: 1 deployments declared") {
		t.Fatalf("a valid file: exit %d\n%s%s", code, out, stderr)
	}
}
