package agent

import (
	"context"
	"time"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
)

// clusterSnapshots is the scheduler's side of a sharded cluster: cluster
// snapshots instead of one replica set's (scheduler.takeOne).
type clusterSnapshots struct {
	w *writer
	// router is the mongos URI the cluster was found through, "" when
	// its shards were given by hand (the balancer is then not stopped).
	router string
}

// deployment is the cluster as the agent's units are connected to it.
func (c *clusterSnapshots) deployment() *source.Deployment {
	topo := c.w.cluster.topology()
	d := &source.Deployment{Cluster: &topo}
	for _, u := range c.w.allUnits() {
		sh, ok := topo.Shard(u.shard)
		if !ok {
			sh = topo.ConfigServer
		}
		d.Members = append(d.Members, source.Member{Shard: sh, Source: u.src})
	}
	return d
}

// take takes one cluster snapshot; the agent's own capture makes every
// shard's oplog durable, and its numbers say how far (covered-through).
func (c *clusterSnapshots) take(ctx context.Context, s *scheduler) error {
	o := snapshot.ClusterOptions{Options: snapshot.Options{Parallel: s.parallel, Capture: snapshot.CaptureByAgent, Log: s.log},
		CoveredThrough: c.coveredThrough}
	if c.router != "" {
		client, err := cluster.Client(c.router)
		if err != nil {
			return err
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			_ = client.Disconnect(dctx)
		}()
		o.Router = snapshot.RouterCommandOf(client)
	}
	_, err := snapshot.TakeCluster(ctx, c.deployment(), c.w.repo, o)
	return err
}

func (c *clusterSnapshots) coveredThrough(shard string) optime.Timestamp {
	for _, u := range c.w.allUnits() {
		if u.shard == shard {
			return u.stats.CoveredThrough()
		}
	}
	return optime.Zero
}

// due says whether a cluster snapshot is needed now: none exists, the
// newest is older than snapshot.every, or a shard recorded a gap or the
// topology changed since it started (the cluster window breaks there).
func (c *clusterSnapshots) due(ctx context.Context, s *scheduler) (bool, string) {
	ids, err := c.w.repo.ListClusterSnapshots(ctx)
	if err != nil {
		s.log.Warn("list cluster snapshots failed", "err", err)
		return false, ""
	}
	if len(ids) == 0 {
		return true, "the repository has no cluster snapshot"
	}
	started := repo.SnapshotRef{ID: ids[len(ids)-1]}.Started()
	for _, u := range c.w.allUnits() {
		gaps, err := c.w.repo.ListGaps(ctx, u.shard)
		if err != nil {
			s.log.Warn("list gaps failed", "shard", u.shard, "err", err)
		} else if n := len(gaps); n > 0 && gaps[n-1].Detected.After(started) {
			return true, "a gap in shard " + u.shard + "'s oplog was recorded after the newest cluster snapshot started"
		}
	}
	if ch := c.w.cluster.changed.Load(); ch != nil && ch.At.After(started) {
		return true, "the cluster's shards changed after the newest cluster snapshot started"
	}
	if s.now().Sub(started) >= s.every {
		return true, "snapshot.every elapsed"
	}
	return false, ""
}

// routerOf is the mongos URI a cluster agent was given as its source, ""
// when the shards were given by hand.
func routerOf(a *Agent) string {
	if len(a.Config.Shards) > 0 {
		return ""
	}
	return a.Config.Source.Reveal()
}
