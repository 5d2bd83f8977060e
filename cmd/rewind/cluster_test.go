package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Bad cluster inputs are usage errors (exit 2) that name what is wrong and
// never show a password; --help never shows a value.
func TestClusterInputsRefused(t *testing.T) {
	const pw = "s3cr3tpw"
	t.Setenv("REWIND_SOURCE", "")
	t.Setenv("REWIND_CONFIG_SERVER", "")
	made := filepath.Join(t.TempDir(), "made")
	if code, out, stderr := cli(t, "init", "--repo", made); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	t.Setenv("REWIND_CONFIG_SERVER", "mongodb://u:"+pw+"@cfg-from-env:27019/")
	dir := filepath.Join(t.TempDir(), "r")
	shard := func(name string) string { return name + "=mongodb://u:" + pw + "@h-" + name + ":27018/" }
	for _, tc := range []struct {
		args  []string
		code  int
		wants []string
	}{
		{[]string{"agent", "--source", "mongodb://u:" + pw + "@mongos:27017/", "--shard", shard("a"), "--repo", dir, "--check-config"}, 2,
			[]string{"source (from --source) and shards (from --shard) are both set"}},
		{[]string{"agent", "--shard", "bad/name=mongodb://u:" + pw + "@h:1/", "--repo", dir, "--check-config"}, 2, []string{`shard name "bad/name"`}},
		{[]string{"agent", "--shard", "mongodb://u:" + pw + "@h:1/", "--repo", dir, "--check-config"}, 2, []string{"--shard takes NAME=URI"}},
		{[]string{"agent", "--shard", shard("a"), "--shard", shard("a"), "--repo", dir, "--check-config"}, 2, []string{`shards[1].name`, `"a" is named twice`}},
		{[]string{"agent", "--shard", "a=notmongo://u:" + pw + "@h/", "--repo", dir, "--check-config"}, 2, []string{"--shard a", "not a MongoDB connection string"}},
		{[]string{"init", "--repo", dir, "--source", "mongodb://u:" + pw + "@mongos:27017/", "--shard", shard("a")}, 2, []string{"--source and --shard/--config-server are both given"}},
		{[]string{"snapshot", "--repo", made, "--shard", "a=mongodb://u:" + pw + "@127.0.0.1:1/?serverSelectionTimeoutMS=300"}, 1, []string{"127.0.0.1:1"}},
	} {
		code, _, stderr := cli(t, tc.args...)
		wantFailure(t, code, stderr, tc.code, tc.wants...)
		if strings.Contains(stderr, pw) {
			t.Errorf("%v: the password shows: %s", tc.args, stderr)
		}
	}
	for _, cmd := range []string{"agent", "init", "snapshot"} {
		_, out, _ := cli(t, cmd, "--help")
		if !strings.Contains(out, "--shard") || !strings.Contains(out, "--config-server") || !strings.Contains(out, "REWIND_CONFIG_SERVER") {
			t.Errorf("%s --help does not show --shard and --config-server:\n%s", cmd, out)
		}
		if strings.Contains(out, pw) || strings.Contains(out, "cfg-from-env") {
			t.Errorf("%s --help shows a value:\n%s", cmd, out)
		}
	}
	// --check-config names the shards and the config server, not their passwords.
	code, out, stderr := cli(t, "agent", "--shard", shard("a"), "--shard", shard("b"), "--repo", dir, "--check-config")
	if code != 0 || !strings.Contains(out, "a, b") || !strings.Contains(out, "$REWIND_CONFIG_SERVER") || strings.Contains(out+stderr, pw) {
		t.Errorf("check-config: exit %d\n%s%s", code, out, stderr)
	}
}

// init with a stand-in cluster's config server records the cluster (its
// config.shards lists the shards); an agent pointed at one replica set is
// then refused.
func TestInitRecordsCluster(t *testing.T) {
	cfgSrv, a, b := standInServers(t)
	for name, s := range map[string]*testserver.Server{"a": a, "b": b} {
		doc := bson.D{{Key: "_id", Value: name}, {Key: "host", Value: s.Host()}}
		if _, err := cfgSrv.Client().Database("config").Collection("shards").InsertOne(context.Background(), doc); err != nil {
			t.Fatal(err)
		}
	}
	dir := filepath.Join(t.TempDir(), "r")
	if code, out, stderr := cli(t, "init", "--repo", dir, "--config-server", cfgSrv.URI()); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	st, err := storage.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(context.Background(), st, repo.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config().Source.Cluster
	if c == nil || strings.Join(c.Names(), ",") != "a,b" || r.Config().Source.Flavor == "" {
		t.Fatalf("the repository records %+v", r.Config().Source)
	}
	code, _, stderr := cli(t, "agent", "--source", a.URI(), "--repo", dir, "--api-listen", "")
	wantFailure(t, code, stderr, 1, "backs up a sharded cluster (shards a, b), not one replica set")
}

// `rewind snapshot` given a stand-in cluster's shards and config server
// takes a cluster snapshot, and `rewind list --json` shows it with its
// shards and T.
func TestSnapshotAndListCluster(t *testing.T) {
	cfgSrv, a, b := standInServers(t)
	args := []string{"--config-server", cfgSrv.URI()}
	for name, s := range map[string]*testserver.Server{"a": a, "b": b} {
		if _, err := s.Client().Database(s.DB("app")).Collection("c").InsertOne(context.Background(), bson.D{{Key: "x", Value: name}}); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--shard", name+"="+s.URI())
	}
	dir := filepath.Join(t.TempDir(), "r")
	if code, out, stderr := cli(t, append([]string{"init", "--repo", dir}, args...)...); code != 0 {
		t.Fatalf("init: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr := cli(t, append([]string{"snapshot", "--repo", dir}, args...)...)
	if code != 0 || !strings.Contains(out, "cluster snapshot") || !strings.Contains(out, "shards a, b, config") {
		t.Fatalf("snapshot: exit %d\n%s%s", code, out, stderr)
	}
	code, out, stderr = cli(t, "list", "--repo", dir, "--json")
	if code != 0 {
		t.Fatalf("list: exit %d\n%s%s", code, out, stderr)
	}
	var l listJSON
	if err := json.Unmarshal([]byte(out), &l); err != nil {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	if len(l.Clusters) != 1 || strings.Join(l.Clusters[0].Shards, ",") != "a,b,config" || l.Clusters[0].T == nil || l.Clusters[0].Balancer != "unknown" {
		t.Fatalf("list --json clusters %+v", l.Clusters)
	}
	for _, sh := range l.Shards {
		if len(sh.Snapshots) != 1 || sh.Snapshots[0].ID != l.Clusters[0].ID {
			t.Errorf("shard %s lists snapshots %+v, want the cluster snapshot's part %s", sh.Shard, sh.Snapshots, l.Clusters[0].ID)
		}
	}
	if _, out, _ := cli(t, "list", "--repo", dir); !strings.Contains(out, "CLUSTER SNAPSHOTS") || !strings.Contains(out, l.Clusters[0].ID) {
		t.Errorf("list does not show the cluster snapshot:\n%s", out)
	}
}

// standInServers starts a stand-in cluster's servers: one to play the
// config server and two shards, with the cluster variables cleared.
func standInServers(t *testing.T) (cfg, a, b *testserver.Server) {
	t.Helper()
	cfg = testserver.Start(t)
	if cfg.External() {
		t.Skip("a stand-in cluster needs test servers of its own; against $REWIND_TEST_MONGODB_URI every server is the same deployment")
	}
	t.Setenv("REWIND_CONFIG_SERVER", "")
	t.Setenv("REWIND_SOURCE", "")
	return cfg, testserver.Start(t), testserver.Start(t)
}
