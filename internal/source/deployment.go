package source

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Deployment is what rewind backs up, connected: one replica set (Single),
// or a sharded cluster's shards and config server (Cluster and Members),
// each connected directly, never through mongos.
type Deployment struct {
	Single  *Source
	Cluster *cluster.Topology
	// Members are the cluster's shards, sorted by name, then its config
	// server when its URI is known (not again when an 8.0 config shard,
	// named "config", is among the shards).
	Members []Member
}

// Member is one connected shard of a cluster.
type Member struct {
	cluster.Shard
	*Source
}

// OpenDeployment connects to what the inputs name: in.Router may be a
// replica set member (Single) or a mongos, whose shards are then found
// through it; in.Shards and in.ConfigServer name a cluster by hand. On
// error nothing stays connected. Errors never show a password.
func OpenDeployment(ctx context.Context, in cluster.Inputs) (*Deployment, error) {
	if len(in.Shards) == 0 && in.ConfigServer == "" {
		src, err := Connect(ctx, in.Router)
		if err == nil {
			return &Deployment{Single: src}, nil
		}
		if !errors.Is(err, ErrRouter) {
			return nil, err
		}
	} else {
		in.Router = ""
	}
	topo, err := cluster.Resolve(ctx, in)
	if err != nil {
		return nil, err
	}
	d := &Deployment{Cluster: &topo}
	members := slices.Clone(topo.Shards)
	if _, ok := topo.Shard(cluster.ConfigShardName); !ok && topo.ConfigServer.URI != "" {
		members = append(members, topo.ConfigServer)
	}
	for _, sh := range members {
		src, err := Connect(ctx, sh.URI)
		if err != nil {
			d.Close(ctx)
			return nil, fmt.Errorf("shard %s: %w", sh.Name, err)
		}
		d.Members = append(d.Members, Member{Shard: sh, Source: src})
	}
	return d, nil
}

// Close disconnects from every server of the deployment.
func (d *Deployment) Close(ctx context.Context) {
	if d.Single != nil {
		_ = d.Single.Close(ctx)
	}
	for _, m := range d.Members {
		_ = m.Source.Close(ctx)
	}
}

// Record is what a repository records of the deployment at init.
func (d *Deployment) Record() repo.Source {
	if d.Single != nil {
		return d.Single.Record()
	}
	srcs := map[string]*Source{}
	for _, m := range d.Members {
		srcs[m.Name] = m.Source
	}
	return RecordCluster(*d.Cluster, srcs)
}

// CheckRepository refuses a repository made for another deployment: see
// Source.CheckRepository and Source.CheckShard; a cluster none of whose
// shards the repository records is another cluster.
func (d *Deployment) CheckRepository(cfg repo.Config) error {
	if d.Single != nil {
		return d.Single.CheckRepository(cfg)
	}
	for _, m := range d.Members {
		if err := m.CheckShard(cfg, m.Name); err != nil {
			return err
		}
	}
	rec := cfg.Source.Cluster
	if rec == nil {
		return nil
	}
	for _, name := range rec.Names() {
		if _, ok := d.Cluster.Shard(name); ok {
			return nil
		}
	}
	return fmt.Errorf("the repository backs up a cluster with shards %v, and this cluster has none of them (%v): use a repository of its own for each cluster",
		rec.Names(), d.Cluster.Names())
}
