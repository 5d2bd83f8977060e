package cluster_test

import (
	"context"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// hostOf is the HOST:PORT of a test server's URI.
func hostOf(t *testing.T, uri string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(uri, "mongodb://")
	if !ok {
		t.Fatalf("test server URI %s is not mongodb://", uri)
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if at := strings.LastIndex(rest, "@"); at >= 0 {
		rest = rest[at+1:]
	}
	return rest
}

// Discovery from the config server: a test server plays the config
// server, holding config.shards documents that point at two stand-in
// shards (test servers); the topology names both, and connecting to each
// shard's URI reaches that shard (each holds a marker of its own). With
// $REWIND_TEST_MONGODB_URI set, the real deployment's topology is
// discovered instead when it is mongos (its own config.shards is never
// written).
func TestFromConfigServer(t *testing.T) {
	ctx := context.Background()
	cfg := testserver.Start(t)
	if cfg.External() {
		discoverExternal(t, cfg)
		return
	}
	shards := map[string]*testserver.Server{"shardA": testserver.Start(t), "shardB": testserver.Start(t)}
	for name, s := range shards {
		if _, err := s.Client().Database(s.DB("marker")).Collection("who").InsertOne(ctx, bson.D{{Key: "_id", Value: name}}); err != nil {
			t.Fatal(err)
		}
		doc := bson.D{{Key: "_id", Value: name}, {Key: "host", Value: hostOf(t, s.URI())}, {Key: "state", Value: 1}}
		if _, err := cfg.Client().Database("config").Collection("shards").InsertOne(ctx, doc); err != nil {
			t.Fatalf("the test server refuses to hold config.shards: %v", err)
		}
	}
	t.Cleanup(func() { _ = cfg.Client().Database("config").Collection("shards").Drop(context.Background()) })

	topo, err := cluster.FromConfigServer(ctx, cfg.Client(), cfg.URI())
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(topo.Names(), ","); got != "shardA,shardB" {
		t.Fatalf("shards %s, want shardA,shardB", got)
	}
	if topo.ConfigServer.URI != cfg.URI() {
		t.Errorf("config server URI %s, want %s", topo.ConfigServer.URI, cfg.URI())
	}
	for _, sh := range topo.Shards {
		src, err := source.Connect(ctx, sh.URI)
		if err != nil {
			t.Fatalf("connect to shard %s at %s: %v", sh.Name, sh.URI, err)
		}
		n, err := src.Client.Database(shards[sh.Name].DB("marker")).Collection("who").CountDocuments(ctx, bson.D{{Key: "_id", Value: sh.Name}})
		_ = src.Close(ctx)
		if err != nil || n != 1 {
			t.Errorf("shard %s's URI %s reaches another server (marker count %d, %v)", sh.Name, sh.URI, n, err)
		}
	}

	// An empty config.shards: not a config server, said so.
	if err := cfg.Client().Database("config").Collection("shards").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = cluster.FromConfigServer(ctx, cfg.Client(), cfg.URI())
	if err == nil || !strings.Contains(err.Error(), "is this the config server") {
		t.Errorf("empty config.shards: %v", err)
	}
}

// discoverExternal runs discovery against a real deployment: through
// mongos when it is one; a replica set has no topology to discover.
func discoverExternal(t *testing.T, s *testserver.Server) {
	ctx := context.Background()
	hello, err := s.Client().Database("admin").RunCommand(ctx, bson.D{{Key: "hello", Value: 1}}).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if !cluster.IsRouter(hello) {
		t.Skip("$REWIND_TEST_MONGODB_URI is not mongos: a replica set has no shards to discover (config.shards is a config server's, never written by tests)")
	}
	topo, err := cluster.Discover(ctx, s.Client(), s.URI())
	if err != nil {
		t.Fatal(err)
	}
	for _, sh := range append(topo.Shards, topo.ConfigServer) {
		src, err := source.Connect(ctx, sh.URI)
		if err != nil {
			t.Fatalf("connect to %s: %v", sh.Name, err)
		}
		if src.SetName != sh.ReplicaSet {
			t.Errorf("%s: connected to replica set %q, want %q", sh.Name, src.SetName, sh.ReplicaSet)
		}
		_ = src.Close(ctx)
	}
}
