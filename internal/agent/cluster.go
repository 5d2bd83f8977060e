package agent

import (
	"context"
	"slices"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// clusterState is what the agent knows of the sharded cluster it captures.
type clusterState struct {
	topo cluster.Topology
	// configUnit captures the config server (or, with an 8.0 config
	// shard, the shard named "config"), whose config.shards is watched;
	// configURI is its connection string. nil and "" when the config
	// server was not given: shard changes are then not watched.
	configUnit *unit
	configURI  string
	// changed is the newest topology change seen, for topology_changed.
	changed atomic.Pointer[alert.TopologyChange]
}

// addClusterUnits makes a unit of every connected member of the cluster.
func (a *Agent) addClusterUnits(w *writer, d *source.Deployment) {
	if len(a.Config.Shards) == 0 && a.Config.ConfigServer == "" {
		a.Log.Info("the source is a mongos: capturing the cluster's shards directly", "source", a.Config.Source, "shards", d.Cluster.Names())
	}
	cs := &clusterState{topo: *d.Cluster}
	w.cluster = cs
	for _, m := range d.Members {
		stats := a.stats.Load()
		if w.unit != nil {
			stats = newStats()
		}
		u := &unit{src: m.Source, shard: m.Name, stats: stats, log: a.Log.With("shard", m.Name)}
		w.addUnit(u)
		if m.Name == cluster.ConfigShardName {
			cs.configUnit, cs.configURI = u, m.URI
		}
	}
}

// seenCluster is the cluster as the agent connected to it: its shards with
// the replica set names their servers report.
func (w *writer) seenCluster() repo.Cluster {
	srcs := map[string]*source.Source{}
	for _, u := range w.units {
		srcs[u.shard] = u.src
	}
	return *source.RecordCluster(w.cluster.topo, srcs).Cluster
}

// watchTopology records the cluster's topology when the repository does not
// hold it yet (or holds another), then, when the config server is known,
// reads its config.shards every a.TopologyEvery: a shard added or removed
// is recorded, logged and alerted (topology_changed). Errors are logged:
// capture goes on.
func (a *Agent) watchTopology(ctx context.Context, w *writer) error {
	cs := w.cluster
	current := w.seenCluster()
	recs, err := w.repo.ListTopology(ctx)
	switch {
	case err != nil:
		a.Log.Warn("read the recorded cluster topology failed; recording the current one", "err", err)
		a.recordTopology(ctx, w, nil, current)
	case len(recs) == 0:
		a.recordTopology(ctx, w, nil, current)
	case !slices.Equal(recs[len(recs)-1].Cluster.Names(), current.Names()):
		a.recordTopology(ctx, w, &recs[len(recs)-1].Cluster, current)
	}
	if cs.configUnit == nil {
		a.Log.Warn("the config server is not known (give --config-server or config_server:): shards added to or removed from the cluster are not seen, and the config server is not captured")
		return nil
	}
	t := time.NewTicker(a.TopologyEvery)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		topo, err := cluster.FromConfigServer(ctx, cs.configUnit.src.Client, cs.configURI)
		if err != nil {
			if !failing && ctx.Err() == nil {
				a.Log.Warn("read config.shards on the config server failed; retrying", "err", err)
			}
			failing = true
			continue
		}
		failing = false
		next := *source.RecordCluster(topo, nil).Cluster
		next.ConfigServer = current.ConfigServer
		if !slices.Equal(next.Names(), current.Names()) {
			a.recordTopology(ctx, w, &current, next)
			current = next
		}
	}
}

// recordTopology writes a topology record; with prev it is a change, also
// logged and alerted.
func (a *Agent) recordTopology(ctx context.Context, w *writer, prev *repo.Cluster, next repo.Cluster) {
	rec := repo.Topology{At: time.Now(), Cluster: next}
	if prev != nil {
		rec.Added, rec.Removed = diffNames(next.Names(), prev.Names()), diffNames(prev.Names(), next.Names())
	}
	if err := w.repo.WriteTopology(ctx, rec); err != nil && ctx.Err() == nil {
		a.Log.Error("record the cluster's topology failed", "err", err)
	}
	if prev == nil {
		a.Log.Info("recorded the cluster's topology", "shards", next.Names(), "config_server", next.ConfigServer)
		return
	}
	a.Log.Error("the cluster's shards changed: the cluster's restore window breaks here, like at a gap, until the next cluster snapshot; restart the agent to capture an added shard",
		"added", rec.Added, "removed", rec.Removed, "shards", next.Names(), "at", rec.At.UTC().Format(time.RFC3339))
	w.cluster.changed.Store(&alert.TopologyChange{At: rec.At, Added: rec.Added, Removed: rec.Removed})
}

// diffNames lists the names of a that b lacks.
func diffNames(a, b []string) []string {
	var out []string
	for _, n := range a {
		if !slices.Contains(b, n) {
			out = append(out, n)
		}
	}
	return out
}
