// Package cluster knows a sharded cluster's topology: which shards it has,
// the replica set each one is, and its config server replica set. rewind
// captures a cluster shard by shard, from each shard's replica set directly
// (never through mongos, which has no oplog of its own), so everything else
// starts from a Topology: discovered through mongos (Discover), read from
// the config server (FromConfigServer), or given by the operator
// (ParseShard, for --shard NAME=URI).
package cluster

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/rewind-backup/rewind/internal/config"
)

// ConfigShardName is the name MongoDB gives the config server replica set
// when it also holds data (a "config shard", 8.0+), and the name rewind
// stores the config server's timelines under.
const ConfigShardName = "config"

// Shard is one replica set of a cluster as rewind captures it.
type Shard struct {
	// Name is the shard's id: config.shards' _id ("shard01"), the NAME of
	// --shard NAME=URI, or ConfigShardName for the config server. Its
	// timelines, snapshots and heartbeats are stored under it.
	Name string `json:"name"`
	// ReplicaSet is the replica set name from the shard's host string
	// ("shard01/h1:27018,h2:27018" gives "shard01"); "" when it gave none.
	ReplicaSet string `json:"replica_set,omitempty"`
	// Hosts are the members the host string lists, as HOST:PORT.
	Hosts []string `json:"hosts,omitempty"`
	// Draining is set while the shard is being removed (listShards'
	// draining flag): its chunks are moving away.
	Draining bool `json:"draining,omitempty"`
	// URI is the connection string rewind uses for this replica set: the
	// one the operator gave, or one built by ShardURI. It holds the
	// credentials, so it is never marshalled; show it with redact.URL.
	URI string `json:"-"`
}

// Topology is a cluster's shards and its config server, as known at one
// moment.
type Topology struct {
	// Shards are sorted by Name. With a config shard (8.0+), the config
	// server is among them, named ConfigShardName.
	Shards []Shard `json:"shards"`
	// ConfigServer is the config server replica set; its Name is always
	// ConfigShardName. Its URI is "" when it is not known (explicit
	// --shard without --config-server).
	ConfigServer Shard `json:"config_server"`
}

// Names returns the shards' names in order.
func (t Topology) Names() []string {
	out := make([]string, len(t.Shards))
	for i, s := range t.Shards {
		out[i] = s.Name
	}
	return out
}

// Shard returns the shard of that name.
func (t Topology) Shard(name string) (Shard, bool) {
	for _, s := range t.Shards {
		if s.Name == name {
			return s, true
		}
	}
	return Shard{}, false
}

// Validate checks what capture depends on: at least one shard, names that
// are unique and usable as repository keys, a URI for each.
func (t Topology) Validate() error {
	if len(t.Shards) == 0 {
		return errors.New("the cluster has no shards: add one with --shard NAME=URI, or give a mongos or config server that lists them")
	}
	seen := map[string]bool{}
	for _, s := range t.Shards {
		if err := CheckShardName(s.Name); err != nil {
			return err
		}
		if seen[s.Name] {
			return fmt.Errorf("shard %q is named twice: every shard needs a name of its own", s.Name)
		}
		seen[s.Name] = true
		if s.URI == "" {
			return fmt.Errorf("shard %q has no connection string", s.Name)
		}
	}
	return nil
}

// CheckShardName (config.CheckShardName) refuses a name that cannot key a shard's objects in the
// repository as it is (repo.ShardID would have to hash it, and the
// operator would no longer recognize it in listings).
func CheckShardName(name string) error { return config.CheckShardName(name) }

// sortShards orders shards by name, the order listings and status use.
func sortShards(s []Shard) {
	sort.Slice(s, func(i, j int) bool { return s[i].Name < s[j].Name })
}

// ParseHost splits a shard's host string as config.shards and listShards
// give it: "rs/h1:p1,h2:p2" is replica set rs with two members; a string
// without "/" names members only.
func ParseHost(host string) (replicaSet string, hosts []string, err error) {
	rest := host
	if rs, h, ok := strings.Cut(host, "/"); ok {
		replicaSet, rest = rs, h
		if rs == "" {
			return "", nil, fmt.Errorf("shard host %q: the replica set name before '/' is empty", host)
		}
	}
	for _, h := range strings.Split(rest, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if len(hosts) == 0 {
		return "", nil, fmt.Errorf("shard host %q names no member", host)
	}
	return replicaSet, hosts, nil
}

// ParseShard reads one --shard flag, NAME=URI: the shard's name and the
// connection string of its replica set. Errors never show the password.
func ParseShard(v string) (Shard, error) {
	name, uri, ok := strings.Cut(v, "=")
	if !ok || strings.Contains(name, "://") {
		return Shard{}, errors.New("--shard takes NAME=URI, e.g. --shard shard01=mongodb://h1:27018,h2:27018/?replicaSet=shard01")
	}
	if err := CheckShardName(name); err != nil {
		return Shard{}, err
	}
	if err := config.CheckMongoURI(uri); err != nil {
		return Shard{}, fmt.Errorf("--shard %s: %w", name, err)
	}
	return Shard{Name: name, URI: uri}, nil
}

// Explicit is the topology the operator gave: shards from --shard flags
// (or the config file's shards list) and the config server's URI ("" when
// not given: then config changes are not watched).
func Explicit(shards []Shard, configURI string) (Topology, error) {
	t := Topology{Shards: append([]Shard(nil), shards...), ConfigServer: Shard{Name: ConfigShardName, URI: configURI}}
	sortShards(t.Shards)
	if configURI != "" {
		if err := config.CheckMongoURI(configURI); err != nil {
			return Topology{}, fmt.Errorf("--config-server: %w", err)
		}
	}
	return t, t.Validate()
}
