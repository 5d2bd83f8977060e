package restore

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Sharding is what a restore into a sharded cluster (the target is a
// mongos) did to place the data before loading it: the databases created on
// their old primary shard, the collections sharded with their old key, the
// zone ranges set, and what it could not carry over and why.
type Sharding struct {
	// From names the cluster snapshot whose routing metadata was used
	// ("" when the repository holds none at or before the restore point:
	// every collection is then restored unsharded).
	From        string              `json:"from"`
	Databases   []ShardedDatabase   `json:"databases"`
	Collections []ShardedCollection `json:"collections"`
	Zones       []ShardedZoneRange  `json:"zones"`
	Skipped     []string            `json:"skipped"` // what was not carried over, each with the reason and the command to run
	commands    []bson.D            // in the order they are run
	log         *slog.Logger
}

// ShardedDatabase is a database created through mongos with its primary.
type ShardedDatabase struct {
	Name         string `json:"name"`
	PrimaryShard string `json:"primary_shard"` // "" when no target shard has the old primary's name: mongos chose
}

// ShardedCollection is a collection sharded with the key it had.
type ShardedCollection struct {
	Namespace string   `json:"namespace"`
	Key       bson.Raw `json:"-"`
	KeyJSON   string   `json:"key"` // the shard key pattern as relaxed extended JSON, {"region":1,"_id":"hashed"}
	Unique    bool     `json:"unique"`
}

// ShardedZoneRange is a zone's range on a sharded collection.
type ShardedZoneRange struct {
	Namespace string `json:"namespace"`
	Zone      string `json:"zone"`
}

// shardingPlan turns a cluster snapshot's routing metadata into the
// commands that recreate its placement on a sharded target whose shards are
// targetShards (name → the zones each carries), for the plan's collections
// under their target names. It does no I/O. A database's old primary shard
// is asked for only when the target has a shard of that name; a zone no
// target shard carries is skipped with the commands to run by hand.
func shardingPlan(rt repo.Routing, p Plan, targetShards map[string][]string) (*Sharding, error) {
	s := &Sharding{Databases: []ShardedDatabase{}, Collections: []ShardedCollection{}, Zones: []ShardedZoneRange{}, Skipped: []string{}}
	primary := map[string]string{}
	for _, d := range rt.Databases {
		name, _ := d.Lookup("_id").StringValueOK()
		primary[name], _ = d.Lookup("primary").StringValueOK()
	}
	sharded := map[string]bson.Raw{}
	for _, c := range rt.Collections {
		ns, _ := c.Lookup("_id").StringValueOK()
		dropped, _ := c.Lookup("dropped").BooleanOK()
		// 8.0 tracks some unsharded collections too (moveCollection):
		// unsplittable, they are not sharded.
		unsplittable, _ := c.Lookup("unsplittable").BooleanOK()
		if ns != "" && !dropped && !unsplittable {
			sharded[ns] = c
		}
	}
	zones := map[string][]bson.Raw{}
	for _, z := range rt.Tags {
		ns, _ := z.Lookup("ns").StringValueOK()
		zones[ns] = append(zones[ns], z)
	}
	carried := map[string]bool{}
	for _, zs := range targetShards {
		for _, z := range zs {
			carried[z] = true
		}
	}
	seenDB := map[string]bool{}
	for _, c := range p.Collections {
		if !seenDB[c.Target.DB] {
			seenDB[c.Target.DB] = true
			s.addDatabase(c.Target.DB, primary[c.Source.DB], targetShards)
		}
		doc, ok := sharded[c.Source.DB+"."+c.Source.Coll]
		if !ok {
			continue
		}
		if err := s.addCollection(c, doc); err != nil {
			return nil, err
		}
		for _, z := range zones[c.Source.DB+"."+c.Source.Coll] {
			s.addZone(c.Target, z, carried)
		}
	}
	return s, nil
}

func (s *Sharding) addDatabase(name, oldPrimary string, targetShards map[string][]string) {
	cmd := bson.D{{Key: "enableSharding", Value: name}}
	d := ShardedDatabase{Name: name}
	if _, ok := targetShards[oldPrimary]; ok && oldPrimary != "" {
		cmd = append(cmd, bson.E{Key: "primaryShard", Value: oldPrimary})
		d.PrimaryShard = oldPrimary
	} else if oldPrimary != "" {
		s.Skipped = append(s.Skipped, fmt.Sprintf("database %s: its primary shard %s is not a shard of the target, so mongos chose one; `movePrimary` moves it", name, oldPrimary))
	}
	s.Databases = append(s.Databases, d)
	s.commands = append(s.commands, cmd)
}

func (s *Sharding) addCollection(c CollectionPlan, doc bson.Raw) error {
	key, ok := doc.Lookup("key").DocumentOK()
	if !ok {
		return fmt.Errorf("plan sharding: config.collections %s.%s has no shard key pattern", c.Source.DB, c.Source.Coll)
	}
	unique, _ := doc.Lookup("unique").BooleanOK()
	ns := c.Target.DB + "." + c.Target.Coll
	cmd := bson.D{{Key: "shardCollection", Value: ns}, {Key: "key", Value: key}}
	if unique {
		cmd = append(cmd, bson.E{Key: "unique", Value: true})
	}
	// A collection with a default collation is sharded on the simple one
	// (shardCollection refuses it otherwise): shard keys compare binary.
	if c.Manifest.Options.Lookup("collation").Type != 0 {
		cmd = append(cmd, bson.E{Key: "collation", Value: bson.D{{Key: "locale", Value: "simple"}}})
	}
	keyJSON, err := bson.MarshalExtJSON(key, false, false)
	if err != nil {
		return fmt.Errorf("plan sharding: shard key of %s.%s: %w", c.Source.DB, c.Source.Coll, err)
	}
	s.Collections = append(s.Collections, ShardedCollection{Namespace: ns, Key: slices.Clone(key), KeyJSON: string(keyJSON), Unique: unique})
	s.commands = append(s.commands, cmd)
	return nil
}

func (s *Sharding) addZone(target Namespace, z bson.Raw, carried map[string]bool) {
	ns := target.DB + "." + target.Coll
	tag, _ := z.Lookup("tag").StringValueOK()
	lo, hi := z.Lookup("min"), z.Lookup("max")
	if !carried[tag] {
		s.Skipped = append(s.Skipped, fmt.Sprintf("zone %s of %s: no shard of the target is in it; run `addShardToZone` for a shard, then `updateZoneKeyRange` on %s from %s to %s",
			tag, ns, ns, lo, hi))
		return
	}
	s.Zones = append(s.Zones, ShardedZoneRange{Namespace: ns, Zone: tag})
	s.commands = append(s.commands, bson.D{{Key: "updateZoneKeyRange", Value: ns}, {Key: "min", Value: lo}, {Key: "max", Value: hi}, {Key: "zone", Value: tag}})
}

// targetShards lists the sharded target's shards (listShards through its
// mongos) with the zones each carries.
func targetShards(ctx context.Context, client *mongo.Client) (map[string][]string, error) {
	var reply struct {
		Shards []struct {
			ID   string   `bson:"_id"`
			Tags []string `bson:"tags"`
		} `bson:"shards"`
	}
	if err := client.Database("admin").RunCommand(ctx, bson.D{{Key: "listShards", Value: 1}}).Decode(&reply); err != nil {
		return nil, fmt.Errorf("list the target cluster's shards (listShards through its mongos): %w; the restoring user needs the clusterMonitor role there", err)
	}
	out := map[string][]string{}
	for _, sh := range reply.Shards {
		out[sh.ID] = sh.Tags
	}
	return out, nil
}

// routingAt reads the routing metadata of the newest cluster snapshot
// consistent at or before t, and its id; "" and no error when the
// repository holds none.
func routingAt(ctx context.Context, r *repo.Repository, t optime.Timestamp) (repo.Routing, string, error) {
	ids, err := r.ListClusterSnapshots(ctx)
	if err != nil {
		return repo.Routing{}, "", fmt.Errorf("list cluster snapshots: %w", err)
	}
	var best repo.ClusterManifest
	for _, id := range ids {
		m, err := r.ReadClusterManifest(ctx, id)
		if err != nil {
			return repo.Routing{}, "", fmt.Errorf("read cluster snapshot %s: %w", id, err)
		}
		if !m.T.After(t) && (best.ID == "" || m.T.After(best.T)) {
			best = m
		}
	}
	return best.Routing, best.ID, nil
}

// prepareSharded readies a sharded target before its collections are
// created: it plans the placement from the routing metadata that held at the
// restore point and creates every target database on its old primary shard
// (where the target has a shard of that name). The collections are sharded
// by shardCollections once they exist, before any document is loaded.
func prepareSharded(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, log *slog.Logger) (*Sharding, error) {
	rt, from, err := routingAt(ctx, r, p.Target)
	if err != nil {
		return nil, err
	}
	shards, err := targetShards(ctx, client)
	if err != nil {
		return nil, err
	}
	s, err := shardingPlan(rt, p, shards)
	if err != nil {
		return nil, err
	}
	s.From, s.log = from, log
	if from == "" {
		s.Skipped = append(s.Skipped, "no cluster snapshot at or before the restore point holds routing metadata: every collection is restored unsharded; shard them with `shardCollection` afterwards")
	}
	for _, cmd := range s.commands {
		if cmd[0].Key != "enableSharding" {
			continue
		}
		if err := client.Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
			return nil, fmt.Errorf("create database %s on the target cluster (enableSharding): %w", cmd[0].Value, err)
		}
	}
	return s, nil
}

// shardCollections shards the created, still empty collections with their
// old keys and sets their zone ranges, so the load and the replay go to the
// shards that own each document.
func (s *Sharding) shardCollections(ctx context.Context, client *mongo.Client) error {
	for _, cmd := range s.commands {
		switch cmd[0].Key {
		case "shardCollection", "updateZoneKeyRange":
			if err := client.Database("admin").RunCommand(ctx, cmd).Err(); err != nil {
				return fmt.Errorf("%s %s on the target cluster: %w", cmd[0].Key, cmd[0].Value, err)
			}
		}
	}
	for _, sk := range s.Skipped {
		s.log.Warn("restore into a sharded cluster: " + sk)
	}
	s.log.Info("the target is a sharded cluster: collections sharded before loading", "databases", len(s.Databases),
		"sharded_collections", len(s.Collections), "zone_ranges", len(s.Zones), "routing_from", s.From)
	return nil
}
