package config

import (
	"strings"
	"testing"
)

// ${NAME} in a value comes from the environment, whatever it holds
// (quotes, '#', ': '); a variable not set is an error naming it; a
// deployment without repo gets one under repo_prefix.
func TestServerFileFromEnvironment(t *testing.T) {
	t.Setenv("ORDERS_SOURCE", "mongodb://backup:p%23w@db1:27017/?replicaSet=rs0&authSource=admin")
	t.Setenv("API_TOKEN", "a: b #c 'd\"")
	s, err := ParseServer([]byte("api:\n  token: ${API_TOKEN}\nrepo_prefix: s3://backups/rewind?region=eu-west-1\ndeployments:\n  - name: orders\n    source: ${ORDERS_SOURCE}\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := s.Deployments[0]
	if d.Config.Source.Reveal() != "mongodb://backup:p%23w@db1:27017/?replicaSet=rs0&authSource=admin" {
		t.Errorf("source = %q", d.Config.Source.Reveal())
	}
	if s.Defaults.API.Token.Reveal() != "a: b #c 'd\"" {
		t.Errorf("api.token = %q", s.Defaults.API.Token.Reveal())
	}
	if d.Config.Repo != "s3://backups/rewind/orders?region=eu-west-1" {
		t.Errorf("repo = %q", d.Config.Repo)
	}
	_, err = ParseServer([]byte("deployments:\n  - {name: a, source: '${NOT_SET_ANYWHERE}', repo: /tmp/a}\n"))
	if err == nil || !strings.Contains(err.Error(), "${NOT_SET_ANYWHERE} is used in the file but not set") {
		t.Errorf("a variable not set: %v", err)
	}
}
