package snapshot

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// ClusterOptions configure TakeCluster. Options apply to every part;
// Options.Parallel bounds the copy of the whole cluster, not each part.
type ClusterOptions struct {
	Options
	// Router runs commands on mongos, to stop the balancer; nil when no
	// mongos was given (explicit --shard): the balancer is then left as
	// it is, and the manifest says so (repo.BalancerUnknown).
	Router RouterCommand
	// BalancerTimeout bounds balancerStop, the wait for a running
	// migration and balancerStart; default DefaultBalancerTimeout.
	BalancerTimeout time.Duration
	// CoveredThrough, when set, is how far a shard's stored oplog is
	// proven complete (the agent's own capture numbers); otherwise, with
	// CaptureByAgent or a running agent, it is read from the shard's
	// heartbeat.
	CoveredThrough func(shard string) optime.Timestamp

	// afterParts, set by tests, runs once every part is stored, before
	// the cluster manifest.
	afterParts func()
}

// TakeCluster takes a cluster snapshot of d (a sharded cluster's shards
// and config server) into r: one part per member, stored as a per-shard
// snapshot under the member's name and the cluster snapshot's id, copied
// in parallel; the routing metadata of the config server; and, last, the
// cluster manifest clusters/ID. It is consistent at T, the latest of the
// parts' ends: it returns only once every shard's stored oplog is proven
// complete through T. The balancer is stopped through Router for the
// whole run and re-enabled in every case (see balancer). On error no
// cluster manifest exists.
func TakeCluster(ctx context.Context, d *source.Deployment, r *repo.Repository, o ClusterOptions) (repo.ClusterManifest, error) {
	if d.Cluster == nil || len(d.Members) == 0 {
		return repo.ClusterManifest{}, errors.New("take a cluster snapshot: the source is not a sharded cluster")
	}
	o.defaults(d.Members[0].Source)
	if o.BalancerTimeout <= 0 {
		o.BalancerTimeout = DefaultBalancerTimeout
	}
	if err := d.CheckRepository(r.Config()); err != nil {
		return repo.ClusterManifest{}, err
	}
	m := repo.ClusterManifest{ID: repo.NewSnapshotID(time.Now()), Started: time.Now()}
	bal := &balancer{run: o.Router, repo: r, timeout: o.BalancerTimeout, log: o.Log}
	if err := bal.recover(ctx); err != nil {
		return repo.ClusterManifest{}, err
	}
	var err error
	defer func() {
		if rerr := bal.restart(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	if m.Balancer, err = bal.stop(ctx, m.ID); err != nil {
		return repo.ClusterManifest{}, err
	}
	err = withLocks(ctx, r, d.Members[0].Name, o.Options, func(ctx context.Context, writer *repo.Lock) error {
		return takeCluster(ctx, d, r, o, writer, &m)
	})
	if err != nil {
		return repo.ClusterManifest{}, err
	}
	return m, nil
}

// takeCluster copies the parts, reads the routing metadata, extends every
// shard's stored oplog through T and writes the cluster manifest.
func takeCluster(ctx context.Context, d *source.Deployment, r *repo.Repository, o ClusterOptions, writer *repo.Lock, m *repo.ClusterManifest) error {
	parts, err := takeParts(ctx, d, r, o, writer, m.ID)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if p.End.After(m.T) {
			m.T = p.End
		}
	}
	if cfg := configMember(d); cfg != nil {
		m.ConfigServer = cfg.Name
		if m.Routing, err = readRouting(ctx, cfg.Source); err != nil {
			return err
		}
	} else {
		o.Log.Warn("the config server is not given (--config-server): the cluster snapshot holds no routing metadata, so a restore cannot shard collections as they were nor drop orphaned documents")
	}
	o.Log.Info("cluster parts copied; making every shard's oplog durable through the cluster's point", "t", m.T.String(), "shards", len(parts))
	if err := coverThrough(ctx, d, r, o, writer, parts, m.T); err != nil {
		return err
	}
	if o.afterParts != nil {
		o.afterParts()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, p := range parts {
		m.Parts = append(m.Parts, p.ClusterPart)
	}
	m.Finished = time.Now()
	if err := r.WriteClusterManifest(ctx, *m); err != nil {
		return err
	}
	o.Log.Info("cluster snapshot complete", "id", m.ID, "t", m.T.String(), "shards", m.Shards(), "balancer", m.Balancer,
		"chunks", len(m.Routing.Chunks), "duration", m.Finished.Sub(m.Started).Round(time.Millisecond).String())
	return nil
}

// takeParts takes every member's part at once; the parts share
// o.Parallel copy slots. Parts come back sorted by shard.
func takeParts(ctx context.Context, d *source.Deployment, r *repo.Repository, o ClusterOptions, writer *repo.Lock, id string) ([]clusterPart, error) {
	slots := make(chan []byte, o.Parallel)
	for range o.Parallel {
		slots <- nil // a free slot; its buffer is made on first use
	}
	var mu sync.Mutex
	var parts []clusterPart
	g, gctx := errgroup.WithContext(ctx)
	for _, mem := range d.Members {
		po := o.Options
		po.part = &partOf{shard: mem.Name, id: id, slots: slots}
		po.Log = o.Log.With("shard", mem.Name)
		g.Go(func() error {
			cat, err := listed(gctx, mem.Source, po)
			if err != nil {
				return fmt.Errorf("shard %s: %w", mem.Name, err)
			}
			rng, err := newOplogRange(gctx, mem.Source, r, po, writer)
			if err != nil {
				return fmt.Errorf("shard %s: %w", mem.Name, err)
			}
			defer rng.stop()
			pm, err := take(gctx, mem.Source, r, po, cat, rng)
			if err != nil {
				return fmt.Errorf("shard %s: %w", mem.Name, err)
			}
			mu.Lock()
			defer mu.Unlock()
			parts = append(parts, clusterPart{ClusterPart: repo.ClusterPart{Shard: mem.Name, Start: pm.Start, End: pm.End},
				fromEmpty: pm.FromEmptyOplog})
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	slices.SortFunc(parts, func(a, b clusterPart) int { return strings.Compare(a.Shard, b.Shard) })
	return parts, nil
}

// clusterPart is a part as it is being taken.
type clusterPart struct {
	repo.ClusterPart
	fromEmpty bool // its copy began on an empty oplog
}

// configMember is the config server's member, nil when not given.
func configMember(d *source.Deployment) *source.Member {
	for i := range d.Members {
		if d.Members[i].Name == cluster.ConfigShardName {
			return &d.Members[i]
		}
	}
	return nil
}

// coverThrough returns once every part's shard has its oplog stored and
// proven complete through t, filling in each part's CoveredThrough: by
// its own capture when this snapshot holds the writer lock, else by the
// agent's (heartbeats, or o.CoveredThrough).
func coverThrough(ctx context.Context, d *source.Deployment, r *repo.Repository, o ClusterOptions, writer *repo.Lock, parts []clusterPart, t optime.Timestamp) error {
	srcs := map[string]*source.Source{}
	for _, mem := range d.Members {
		srcs[mem.Name] = mem.Source
	}
	g, gctx := errgroup.WithContext(ctx)
	for i := range parts {
		p := &parts[i]
		g.Go(func() error {
			var err error
			if writer != nil {
				rc := &rangeCapture{src: srcs[p.Shard], repo: r, lock: writer, shard: p.Shard,
					log: o.Log.With("shard", p.Shard), fromEmpty: p.fromEmpty, through: true}
				err = rc.run(gctx, p.Start, func() (optime.Timestamp, bool) { return t, true })
				p.CoveredThrough = rc.covered
			} else {
				p.CoveredThrough, err = waitCoveredThrough(gctx, r, p.Shard, t, o)
			}
			if err != nil {
				return fmt.Errorf("shard %s: make its oplog durable through the cluster's point %s: %w", p.Shard, t, err)
			}
			return nil
		})
	}
	return g.Wait()
}

// waitCoveredThrough polls how far the agent has the shard's oplog
// complete until it reaches t, for up to o.WaitTimeout.
func waitCoveredThrough(ctx context.Context, r *repo.Repository, shard string, t optime.Timestamp, o ClusterOptions) (optime.Timestamp, error) {
	deadline := time.Now().Add(o.WaitTimeout)
	for {
		var got optime.Timestamp
		if o.CoveredThrough != nil {
			got = o.CoveredThrough(shard)
		} else if hb, err := r.ReadHeartbeat(ctx, shard); err == nil {
			got = hb.Covered()
		}
		if !got.Before(t) {
			return got, nil
		}
		if time.Now().After(deadline) {
			return got, fmt.Errorf("the agent has the oplog complete only through %s after %s: check it with `rewind status`", got, o.WaitTimeout)
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
