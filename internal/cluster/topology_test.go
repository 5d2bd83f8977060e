package cluster

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// Replies written from MongoDB's documentation of listShards (6.0, 7.0,
// 8.0: the same shape; 8.0 adds the config shard, _id "config") and from
// the server's getShardMap command (map: shard id or host to connection
// string, with the config server under "config"; hosts; connStrings).
const (
	listShards60 = `{"shards": [
	  {"_id": "shard01", "host": "shard01/host1:27018,host2:27018,host3:27018", "state": 1, "topologyTime": {"$timestamp": {"t": 1700000000, "i": 1}}},
	  {"_id": "shard02", "host": "shard02/host4:27018,host5:27018,host6:27018", "tags": ["NYC"], "state": 1},
	  {"_id": "shard03", "host": "shard03/host7:27018,host8:27018,host9:27018", "draining": true, "state": 1}
	], "ok": 1, "$clusterTime": {"clusterTime": {"$timestamp": {"t": 1510716515, "i": 1}}}, "operationTime": {"$timestamp": {"t": 1510716515, "i": 1}}}`
	listShards80ConfigShard = `{"shards": [
	  {"_id": "config", "host": "configRepl/cfg1:27019,cfg2:27019,cfg3:27019", "state": 1, "topologyTime": {"$timestamp": {"t": 1700000000, "i": 5}}, "replSetConfigVersion": {"$numberLong": "-1"}},
	  {"_id": "shard01", "host": "shard01/host1:27018,host2:27018", "state": 1, "topologyTime": {"$timestamp": {"t": 1700000001, "i": 1}}, "replSetConfigVersion": {"$numberLong": "-1"}}
	], "ok": 1}`
	shardMap = `{"map": {
	  "shard01": "shard01/host1:27018,host2:27018,host3:27018",
	  "host1:27018": "shard01/host1:27018,host2:27018,host3:27018",
	  "shard02": "shard02/host4:27018,host5:27018,host6:27018",
	  "shard03": "shard03/host7:27018,host8:27018,host9:27018",
	  "config": "configRepl/cfg1:27019,cfg2:27019,cfg3:27019"
	}, "hosts": {"host1:27018": "shard01", "cfg1:27019": "config"},
	  "connStrings": {"configRepl/cfg1:27019,cfg2:27019,cfg3:27019": "config"}, "ok": 1}`
)

func ejson(t *testing.T, s string) bson.Raw {
	t.Helper()
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestFromReplies(t *testing.T) {
	const router = "mongodb://backup:s3cret@mongos1:27017,mongos2:27017/?authSource=admin&tls=true&retryWrites=false"
	topo, err := fromReplies(ejson(t, listShards60), ejson(t, shardMap), router)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(topo.Names(), ","); got != "shard01,shard02,shard03" {
		t.Fatalf("shards %s", got)
	}
	s3, _ := topo.Shard("shard03")
	if !s3.Draining || s3.ReplicaSet != "shard03" || len(s3.Hosts) != 3 {
		t.Errorf("shard03 = %+v; want draining, replica set shard03, 3 hosts", s3)
	}
	s1, _ := topo.Shard("shard01")
	want := "mongodb://backup:s3cret@host1:27018,host2:27018,host3:27018/?authSource=admin&replicaSet=shard01&retryWrites=false&tls=true"
	if s1.URI != want {
		t.Errorf("shard01's URI\n got %s\nwant %s", s1.URI, want)
	}
	if topo.ConfigServer.Name != ConfigShardName || topo.ConfigServer.ReplicaSet != "configRepl" ||
		!strings.Contains(topo.ConfigServer.URI, "@cfg1:27019,cfg2:27019,cfg3:27019/?") || !strings.Contains(topo.ConfigServer.URI, "replicaSet=configRepl") {
		t.Errorf("config server %+v (%s)", topo.ConfigServer, topo.ConfigServer.URI)
	}

	// 8.0's config shard: the config server is one of the shards too.
	topo, err = fromReplies(ejson(t, listShards80ConfigShard), ejson(t, shardMap), router)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(topo.Names(), ","); got != "config,shard01" {
		t.Fatalf("shards with a config shard: %s", got)
	}
	cs, _ := topo.Shard(ConfigShardName)
	if cs.URI != topo.ConfigServer.URI {
		t.Errorf("the config shard's URI %s differs from the config server's %s", cs.URI, topo.ConfigServer.URI)
	}

	// A getShardMap without the config server is refused with what to do.
	_, err = fromReplies(ejson(t, listShards60), ejson(t, `{"map": {"shard01": "shard01/h:1"}, "ok": 1}`), router)
	if err == nil || !strings.Contains(err.Error(), "--config-server") {
		t.Errorf("no config entry: %v", err)
	}
	// An empty shard list is refused.
	_, err = fromReplies(ejson(t, `{"shards": [], "ok": 1}`), ejson(t, shardMap), router)
	if err == nil || !strings.Contains(err.Error(), "no shards") {
		t.Errorf("no shards: %v", err)
	}
}

func TestShardURI(t *testing.T) {
	hosts := []string{"h1:27018", "h2:27018"}
	for _, tc := range []struct{ base, want string }{
		// Options of the router that name it are dropped; the rest kept.
		{"mongodb://u:p%40ss@mongos:27017/admin?directConnection=true&replicaSet=other&w=majority",
			"mongodb://u:p%40ss@h1:27018,h2:27018/admin?replicaSet=rs1&w=majority"},
		{"mongodb://mongos:27017", "mongodb://h1:27018,h2:27018/?replicaSet=rs1"},
		{"mongodb://mongos:27017/?loadBalanced=true&appName=x", "mongodb://h1:27018,h2:27018/?appName=x&replicaSet=rs1"},
	} {
		got, err := ShardURI(tc.base, "rs1", hosts, nil)
		if err != nil || got != tc.want {
			t.Errorf("ShardURI(%s) = %s, %v\nwant %s", tc.base, got, err, tc.want)
		}
	}
	// +srv: the router's DNS names are not the shard's; TLS and the TXT
	// record's authSource are written out.
	lookup := func(string) (*connstring.ConnString, error) {
		return &connstring.ConnString{AuthSource: "admin", AuthSourceSet: true}, nil
	}
	got, err := ShardURI("mongodb+srv://u:p@cluster0.example.net/?srvMaxHosts=2&retryWrites=true", "rs1", hosts, lookup)
	want := "mongodb://u:p@h1:27018,h2:27018/?authSource=admin&replicaSet=rs1&retryWrites=true&tls=true"
	if err != nil || got != want {
		t.Errorf("ShardURI(+srv) = %s, %v\nwant %s", got, err, want)
	}
	got, err = ShardURI("mongodb+srv://u:p@cluster0.example.net/?tls=false", "rs1", hosts, lookup)
	if err != nil || !strings.Contains(got, "tls=false") || strings.Contains(got, "tls=true") {
		t.Errorf("an explicit tls=false is kept: %s, %v", got, err)
	}
	// Errors never show the password.
	_, err = ShardURI("mongodb+srv://u:hunter2@cluster0.example.net/", "rs1", hosts, func(string) (*connstring.ConnString, error) {
		return nil, errors.New("lookup _mongodb._tcp.cluster0.example.net for mongodb+srv://u:hunter2@cluster0.example.net/: no such host")
	})
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("resolve failure: %v; want an error without the password", err)
	}
	_, err = ShardURI("http://u:hunter2@x/", "rs1", hosts, nil)
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("not a MongoDB URI: %v; want an error without the password", err)
	}
}

func TestParseHost(t *testing.T) {
	rs, hosts, err := ParseHost("shard01/h1:1, h2:2")
	if err != nil || rs != "shard01" || strings.Join(hosts, ",") != "h1:1,h2:2" {
		t.Errorf("ParseHost = %q %v %v", rs, hosts, err)
	}
	rs, hosts, err = ParseHost("localhost:1028") // a standalone shard (MongoDB < 3.6 allowed them)
	if err != nil || rs != "" || len(hosts) != 1 {
		t.Errorf("ParseHost(standalone) = %q %v %v", rs, hosts, err)
	}
	for _, bad := range []string{"", "/h:1", "rs/", "rs/ , "} {
		if _, _, err := ParseHost(bad); err == nil {
			t.Errorf("ParseHost(%q) accepted", bad)
		}
	}
}

func TestParseShardAndExplicit(t *testing.T) {
	a, err := ParseShard("shardB=mongodb://u:p@h2:27018/?replicaSet=b")
	if err != nil || a.Name != "shardB" || a.URI != "mongodb://u:p@h2:27018/?replicaSet=b" {
		t.Fatalf("ParseShard = %+v, %v", a, err)
	}
	b, err := ParseShard("shardA=mongodb://h1:27018")
	if err != nil {
		t.Fatal(err)
	}
	topo, err := Explicit([]Shard{a, b}, "")
	if err != nil || strings.Join(topo.Names(), ",") != "shardA,shardB" || topo.ConfigServer.URI != "" {
		t.Fatalf("Explicit = %+v, %v", topo, err)
	}
	for _, tc := range []struct{ in, want string }{
		{"mongodb://h:1", "--shard takes NAME=URI"},
		{"=mongodb://h:1", "a shard needs a name"},
		{"a/b=mongodb://h:1", "shard name \"a/b\""},
		{"a=http://u:hunter2@h:1", "not a MongoDB connection string"},
		{"a=mongodb://u:hunter2@h:1:2:3", "not a MongoDB connection string"},
	} {
		_, err := ParseShard(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("ParseShard(%q) = %v; want an error saying %q, without the password", tc.in, err, tc.want)
		}
	}
	if _, err := Explicit([]Shard{a, a}, ""); err == nil || !strings.Contains(err.Error(), "named twice") {
		t.Errorf("a shard twice: %v", err)
	}
	if _, err := Explicit(nil, ""); err == nil || !strings.Contains(err.Error(), "--shard NAME=URI") {
		t.Errorf("no shard: %v", err)
	}
	if _, err := Explicit([]Shard{a}, "mongodb://u:hunter2@cfg:1:2"); err == nil || !strings.Contains(err.Error(), "--config-server") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("bad --config-server: %v", err)
	}
}

func TestIsRouter(t *testing.T) {
	if !IsRouter(ejson(t, `{"isWritablePrimary": true, "msg": "isdbgrid", "maxBsonObjectSize": 16777216, "ok": 1}`)) {
		t.Error("mongos's hello not recognized")
	}
	if IsRouter(ejson(t, `{"isWritablePrimary": true, "setName": "rs0", "ok": 1}`)) {
		t.Error("a replica set member taken for mongos")
	}
}
