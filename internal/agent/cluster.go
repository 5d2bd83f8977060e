package agent

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// clusterState is what the agent knows of the sharded cluster it captures.
type clusterState struct {
	mu   sync.Mutex // guards topo: a shard that joins is added to it
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
	for _, u := range w.allUnits() {
		srcs[u.shard] = u.src
	}
	return *source.RecordCluster(w.cluster.topology(), srcs).Cluster
}

// topology is the cluster as the agent captures it now.
func (cs *clusterState) topology() cluster.Topology {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	t := cs.topo
	t.Shards = slices.Clone(t.Shards)
	return t
}

// captureAdded starts capturing the shards that joined the cluster while
// the agent runs, as it captures those it started with: each connected
// with the connection string built from the config server's (the same
// credentials and options), with its own spool and timelines, from its
// oplog's newest entry on. The data it held before is in the next cluster
// snapshot, which the change makes due. A shard that cannot be captured is
// logged with what to do; the others go on.
func (a *Agent) captureAdded(ctx context.Context, w *writer, topo cluster.Topology, added []string) {
	for _, name := range added {
		sh, ok := topo.Shard(name)
		if !ok || slices.ContainsFunc(w.allUnits(), func(u *unit) bool { return u.shard == name }) {
			continue
		}
		if err := a.startShard(ctx, w, sh); err != nil {
			if ctx.Err() == nil {
				a.Log.Error("capture of the added shard failed to start; fix the cause and restart the agent to capture it", "shard", name, "err", err)
			}
			continue
		}
		a.Log.Info("capturing the added shard", "shard", name)
	}
}

// startShard connects one shard, opens its unit and starts its capture.
func (a *Agent) startShard(ctx context.Context, w *writer, sh cluster.Shard) error {
	src, err := source.Connect(ctx, sh.URI)
	if err != nil {
		return err
	}
	u := &unit{src: src, shard: sh.Name, stats: newStats(), log: a.Log.With("shard", sh.Name)}
	if err := w.openUnit(ctx, u, spoolDir(w.spoolBase, u, true), a.Config.Capture.SpoolMaxBytes); err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_ = src.Close(cctx)
		return err
	}
	w.cluster.mu.Lock()
	w.cluster.topo.Shards = append(w.cluster.topo.Shards, sh)
	w.cluster.mu.Unlock()
	w.addUnit(u)
	if srv := a.api.Load(); srv != nil {
		srv.AddUnit(api.Unit{Shard: u.shard, Stats: u.stats, Spool: u.spool})
	}
	w.startUnit(u)
	return nil
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
			a.captureAdded(ctx, w, topo, diffNames(next.Names(), current.Names()))
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
	a.Log.Error("the cluster's shards changed: the cluster's restore window breaks here, like at a gap, until the next cluster snapshot; an added shard is captured from now on",
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
