package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A cluster given by hand is checked like a source: each shard named once
// with a key-safe name, each URI a MongoDB connection string, never with
// source as well; every problem names its key and no password shows.
func TestValidateShards(t *testing.T) {
	const pw = "p4ssword"
	shard := func(name, uri string) ShardSource { return ShardSource{Name: name, URI: Secret(uri)} }
	valid := func() Config {
		c := Default()
		c.Repo = "file:///tmp/r"
		c.Shards = []ShardSource{shard("shard01", "mongodb://u:"+pw+"@h1:27018/?replicaSet=shard01"), shard("shard02", "mongodb://u:"+pw+"@h2:27018/")}
		c.ConfigServer = Secret("mongodb://u:" + pw + "@cfg:27019/?replicaSet=cfg")
		return c
	}
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		wants []string
	}{
		{"valid", func(c *Config) {}, nil},
		{"config server alone", func(c *Config) { c.Shards = nil }, nil},
		{"shards without config server", func(c *Config) { c.ConfigServer = "" }, nil},
		{"source and shards", func(c *Config) { c.Source = Secret("mongodb://u:" + pw + "@mongos:27017/") }, []string{"source and shards are both set"}},
		{"source and shards from flags", func(c *Config) {
			c.Source, c.Origins = Secret("mongodb://h/"), map[string]string{"source": "--source", "shards": "--shard"}
		}, []string{"source (from --source) and shards (from --shard)"}},
		{"bad name", func(c *Config) { c.Shards[1].Name = "shard/02" }, []string{"shards[1].name", `shard name "shard/02"`}},
		{"empty name", func(c *Config) { c.Shards[0].Name = "" }, []string{"shards[0].name", "needs a name"}},
		{"duplicate", func(c *Config) { c.Shards[1].Name = "shard01" }, []string{"shards[1].name", `"shard01" is named twice`}},
		{"no uri", func(c *Config) { c.Shards[0].URI = "" }, []string{"shards[0].uri is not set"}},
		{"bad uri", func(c *Config) { c.Shards[1].URI = Secret("notmongo://u:" + pw + "@h/") }, []string{"shards[1].uri", "not a MongoDB connection string"}},
		{"bad config server", func(c *Config) { c.ConfigServer = Secret("mongodb://u:" + pw + "@[::1/") }, []string{"config_server", "not a MongoDB connection string"}},
		{"nothing", func(c *Config) { c.Shards, c.ConfigServer = nil, "" }, []string{"source is not set", "--shard NAME=URI"}},
	} {
		c := valid()
		tc.edit(&c)
		err := c.Validate()
		switch {
		case len(tc.wants) == 0 && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case len(tc.wants) > 0 && err == nil:
			t.Errorf("%s: accepted", tc.name)
		case err != nil:
			for _, w := range tc.wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: %q does not say %q", tc.name, err, w)
				}
			}
			if strings.Contains(err.Error(), pw) {
				t.Errorf("%s: the password shows: %v", tc.name, err)
			}
		}
	}
}

// The keys load from YAML; a shard's URI is a secret that never prints.
func TestLoadShards(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(p, []byte("repo: file:///tmp/r\nconfig_server: mongodb://u:s3cret@cfg:27019/\nshards:\n  - name: shard01\n    uri: mongodb://u:s3cret@h1:27018/\n"), 0o600))
	c, err := Load(p)
	must(err)
	must(c.Validate())
	if len(c.Shards) != 1 || c.Shards[0].Name != "shard01" || c.Shards[0].URI.Reveal() != "mongodb://u:s3cret@h1:27018/" || c.ConfigServer.Reveal() != "mongodb://u:s3cret@cfg:27019/" {
		t.Fatalf("loaded %+v", c)
	}
	if strings.Contains(c.Shards[0].URI.String(), "s3cret") {
		t.Errorf("a shard's URI prints its password: %s", c.Shards[0].URI)
	}
}
