package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// source_file: the agent's file and the server file's deployments read the
// connection string from it (one trailing newline trimmed); a deployment
// added over the API may not name a file for the server to read.
func TestSourceFileKey(t *testing.T) {
	dir := t.TempDir()
	uriFile := filepath.Join(dir, "uri")
	os.WriteFile(uriFile, []byte("mongodb://u:pw@db1/?replicaSet=rs0\r\n"), 0o600)

	agentFile := filepath.Join(dir, "agent.yaml")
	os.WriteFile(agentFile, []byte("source_file: "+uriFile+"\nrepo: /r\n"), 0o600)
	cfg, err := Load(agentFile)
	if err != nil || cfg.Source.Reveal() != "mongodb://u:pw@db1/?replicaSet=rs0" {
		t.Fatalf("agent source_file: %q, %v", cfg.Source.Reveal(), err)
	}

	server := "deployments:\n  - {name: a, source_file: " + uriFile + ", repo: " + filepath.Join(dir, "a") + "}\n"
	s, err := ParseServer([]byte(server))
	if err != nil || len(s.Deployments) != 1 || s.Deployments[0].Config.Source.Reveal() != "mongodb://u:pw@db1/?replicaSet=rs0" {
		t.Fatalf("server deployment source_file: %+v, %v", s.Deployments, err)
	}
	_, err = s.ParseDeployment([]byte(`{"name": "b", "source_file": "` + uriFile + `", "repo": "` + filepath.Join(dir, "b") + `"}`))
	if err == nil || !strings.Contains(err.Error(), "source_file: is read only from the server's file") {
		t.Fatalf("source_file over the API: %v", err)
	}
	_, err = s.PatchDeployment(s.Deployments[0], []byte(`{"source_file": "/etc/hostname"}`))
	if err == nil || !strings.Contains(err.Error(), "source_file") {
		t.Fatalf("source_file in a PATCH: %v", err)
	}
	if _, err := ParseServer([]byte("source_file: " + uriFile + "\n")); err == nil || !strings.Contains(err.Error(), "source_file") {
		t.Fatalf("source_file at the top level: %v", err)
	}
	missing := "deployments:\n  - {name: a, source_file: " + filepath.Join(dir, "nope") + ", repo: /r}\n"
	if _, err := ParseServer([]byte(missing)); err == nil || !strings.Contains(err.Error(), "read source_file") {
		t.Fatalf("missing source_file: %v", err)
	}
}
