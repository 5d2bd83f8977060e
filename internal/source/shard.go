package source

import (
	"fmt"
	"strings"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
)

// RecordCluster is what a repository records of a sharded cluster at init:
// each shard's name and the replica set name its source reported, and the
// config server's (srcs is keyed by shard name; the config server under
// cluster.ConfigShardName, when it is known).
func RecordCluster(topo cluster.Topology, srcs map[string]*Source) repo.Source {
	rec := repo.Source{Cluster: &repo.Cluster{}}
	for _, sh := range topo.Shards {
		c := repo.ClusterShard{Name: sh.Name, ReplicaSet: sh.ReplicaSet}
		if s := srcs[sh.Name]; s != nil {
			c.ReplicaSet, rec.Flavor = s.SetName, string(s.Flavor)
		}
		rec.Cluster.Shards = append(rec.Cluster.Shards, c)
	}
	if s := srcs[cluster.ConfigShardName]; s != nil {
		rec.Cluster.ConfigServer = s.SetName
	}
	return rec
}

// CheckShard refuses to capture s as shard name of a cluster into a
// repository made for something else: a replica set's repository, or a
// cluster that records a shard of that name with another replica set (a
// shard of another cluster). A shard the repository does not record is
// accepted (it was added since; the agent records the change), and so is
// anything in a repository that records no source.
func (s *Source) CheckShard(cfg repo.Config, name string) error {
	want := cfg.Source
	switch {
	case want.Flavor == "" && want.Cluster == nil:
		return nil
	case want.Cluster == nil:
		rs := want.ReplicaSet
		if rs == "" {
			rs = want.Flavor
		}
		return fmt.Errorf("the repository backs up one replica set (%s), not a sharded cluster: use a repository of its own for the cluster", rs)
	case want.Flavor != "" && want.Flavor != string(s.Flavor):
		return fmt.Errorf("the repository backs up a %s cluster, not this %s one: use a repository of its own for each cluster", want.Flavor, s.Flavor)
	}
	recorded := want.Cluster.ConfigServer
	known := name == cluster.ConfigShardName
	for _, sh := range want.Cluster.Shards {
		if sh.Name == name {
			recorded, known = sh.ReplicaSet, true
		}
	}
	if known && recorded != "" && s.SetName != "" && recorded != s.SetName {
		return fmt.Errorf("shard %q: the repository records it as replica set %q, but this source is replica set %q (a shard of another cluster?): use a repository of its own for each cluster (it records shards %s)",
			name, recorded, s.SetName, strings.Join(want.Cluster.Names(), ", "))
	}
	return nil
}
