package cluster

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// IsRouter reports whether a hello reply comes from mongos: MongoDB's
// routers answer msg "isdbgrid", and nothing else does.
func IsRouter(hello bson.Raw) bool {
	msg, _ := hello.Lookup("msg").StringValueOK()
	return msg == "isdbgrid"
}

// shardDoc is one shard as config.shards stores it and listShards returns
// it: {_id: "shard01", host: "shard01/h1:27018,h2:27018", state: 1,
// draining: true (while being removed), tags: [...], topologyTime: ...}.
type shardDoc struct {
	ID       string `bson:"_id"`
	Host     string `bson:"host"`
	Draining bool   `bson:"draining"`
}

// Discover asks mongos (client, connected with routerURI) for the
// cluster's topology: listShards for the shards and getShardMap for the
// config server replica set. Each replica set's URI is built from
// routerURI by ShardURI. The user needs the clusterMonitor role (the
// backup role of a sharded cluster's backup user in MongoDB's own
// guidance); a refusal says so.
func Discover(ctx context.Context, client *mongo.Client, routerURI string) (Topology, error) {
	admin := client.Database("admin")
	shards, err := admin.RunCommand(ctx, bson.D{{Key: "listShards", Value: 1}}).Raw()
	if err != nil {
		return Topology{}, fmt.Errorf("list the cluster's shards (listShards): %w", permissionHint(err))
	}
	shardMap, err := admin.RunCommand(ctx, bson.D{{Key: "getShardMap", Value: 1}}).Raw()
	if err != nil {
		return Topology{}, fmt.Errorf("find the config server (getShardMap): %w", permissionHint(err))
	}
	return fromReplies(shards, shardMap, routerURI)
}

// fromReplies reads the replies of listShards ({shards: [shardDoc...]})
// and getShardMap ({map: {"config": "cfgRS/h:p,...", <shard>: ...},
// hosts: ..., connStrings: ...}; only map's "config" is used).
func fromReplies(listShards, shardMap bson.Raw, routerURI string) (Topology, error) {
	var shards struct {
		Shards []shardDoc `bson:"shards"`
	}
	if err := bson.Unmarshal(listShards, &shards); err != nil {
		return Topology{}, fmt.Errorf("read listShards' reply: %w", err)
	}
	var m struct {
		Map map[string]string `bson:"map"`
	}
	if err := bson.Unmarshal(shardMap, &m); err != nil {
		return Topology{}, fmt.Errorf("read getShardMap's reply: %w", err)
	}
	cfgHost, ok := m.Map[ConfigShardName]
	if !ok {
		return Topology{}, errors.New("find the config server: getShardMap's map has no \"config\" entry; give it with --config-server URI")
	}
	return build(shards.Shards, shardDoc{ID: ConfigShardName, Host: cfgHost}, routerURI)
}

// FromConfigServer reads the topology from the config server replica set
// itself (client, connected with configURI): the shards are the documents
// of config.shards. This is the way for operators who cannot reach mongos;
// it reads what listShards reads.
func FromConfigServer(ctx context.Context, client *mongo.Client, configURI string) (Topology, error) {
	cur, err := client.Database("config").Collection("shards").Find(ctx, bson.D{})
	if err != nil {
		return Topology{}, fmt.Errorf("read config.shards on the config server: %w", permissionHint(err))
	}
	var docs []shardDoc
	if err := cur.All(ctx, &docs); err != nil {
		return Topology{}, fmt.Errorf("read config.shards on the config server: %w", permissionHint(err))
	}
	if len(docs) == 0 {
		return Topology{}, errors.New("config.shards on the config server is empty: is this the config server replica set of a sharded cluster (mongod --configsvr)?")
	}
	return build(docs, shardDoc{ID: ConfigShardName}, configURI)
}

// build turns shard documents into a Topology whose URIs come from base.
// cfg.Host "" means base itself is the config server.
func build(docs []shardDoc, cfg shardDoc, base string) (Topology, error) {
	var t Topology
	for _, d := range docs {
		s, err := fromDoc(d, base)
		if err != nil {
			return Topology{}, err
		}
		t.Shards = append(t.Shards, s)
	}
	sortShards(t.Shards)
	if cfg.Host == "" {
		t.ConfigServer = Shard{Name: ConfigShardName, URI: base}
	} else {
		s, err := fromDoc(cfg, base)
		if err != nil {
			return Topology{}, err
		}
		t.ConfigServer = s
	}
	return t, t.Validate()
}

func fromDoc(d shardDoc, base string) (Shard, error) {
	rs, hosts, err := ParseHost(d.Host)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", d.ID, err)
	}
	uri, err := ShardURI(base, rs, hosts, nil)
	if err != nil {
		return Shard{}, fmt.Errorf("shard %q: %w", d.ID, err)
	}
	return Shard{Name: d.ID, ReplicaSet: rs, Hosts: hosts, Draining: d.Draining, URI: uri}, nil
}

// permissionHint adds what to do to an authorization refusal.
func permissionHint(err error) error {
	var se mongo.ServerError
	if errors.As(err, &se) && (se.HasErrorCode(13) || se.HasErrorCode(18)) { // Unauthorized, AuthenticationFailed
		return fmt.Errorf("%w: the user needs the backup and clusterMonitor roles on the cluster", err)
	}
	return err
}
