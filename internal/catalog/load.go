package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Load lists every shard of the repository and derives its catalog. Reading
// manifests needs the identity when the repository is encrypted.
func Load(ctx context.Context, r *repo.Repository) (Catalog, error) {
	ids, err := r.Shards(ctx)
	if err != nil {
		return Catalog{}, fmt.Errorf("list shards: %w", err)
	}
	snaps, err := r.ListSnapshots(ctx, "")
	if err != nil {
		return Catalog{}, fmt.Errorf("list snapshots: %w", err)
	}
	for _, s := range snaps {
		if !contains(ids, s.Shard) {
			ids = append(ids, s.Shard)
		}
	}
	var c Catalog
	if cl := r.Config().Source.Cluster; cl != nil {
		c.Cluster = cl.Names()
	}
	for _, id := range ids {
		sh, err := LoadShard(ctx, r, id, snaps)
		if err != nil {
			return Catalog{}, err
		}
		if sh.Covered, err = covered(ctx, r, id); err != nil {
			return Catalog{}, err
		}
		c.Shards = append(c.Shards, sh)
	}
	if c.Cluster != nil {
		if err := c.coveredByClusterSnapshot(ctx, r); err != nil {
			return Catalog{}, err
		}
	}
	return c, nil
}

// coveredByClusterSnapshot raises each shard's covered-through time to
// what the newest cluster snapshot proved (repo.ClusterPart.CoveredThrough,
// at or after its T): a cluster snapshot taken without an agent writes no
// heartbeat, yet it stored every shard's oplog through T, so the cluster
// is restorable up to T (Reach uses it on the shard's newest timeline).
func (c *Catalog) coveredByClusterSnapshot(ctx context.Context, r *repo.Repository) error {
	ids, err := r.ListClusterSnapshots(ctx)
	if err != nil || len(ids) == 0 {
		return err
	}
	m, err := r.ReadClusterManifest(ctx, ids[len(ids)-1])
	if err != nil {
		return fmt.Errorf("read cluster snapshot %s: %w", ids[len(ids)-1], err)
	}
	for _, p := range m.Parts {
		for i := range c.Shards {
			if c.Shards[i].ID == p.Shard && p.CoveredThrough.After(c.Shards[i].Covered) {
				c.Shards[i].Covered = p.CoveredThrough
			}
		}
	}
	return nil
}

// covered reads a shard's covered-through time from its heartbeat; zero
// when it has none.
func covered(ctx context.Context, r *repo.Repository, shard string) (optime.Timestamp, error) {
	hb, err := r.ReadHeartbeat(ctx, shard)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return optime.Zero, nil
	case err != nil:
		return optime.Zero, fmt.Errorf("read the heartbeat of shard %s: %w", shard, err)
	}
	return hb.Covered(), nil
}

// LoadShard derives one shard's catalog; snaps is a listing of snapshots
// (of any shard: the others are ignored).
func LoadShard(ctx context.Context, r *repo.Repository, shard string, snaps []repo.SnapshotRef) (Shard, error) {
	h, err := r.History(ctx, shard)
	if err != nil {
		return Shard{}, fmt.Errorf("list history of shard %s: %w", shard, err)
	}
	var ms []repo.Manifest
	for _, s := range snaps {
		if s.Shard != shard {
			continue
		}
		m, err := r.ReadManifest(ctx, s.Shard, s.ID)
		if err != nil {
			return Shard{}, fmt.Errorf("read snapshot %s: %w", s.ID, err)
		}
		ms = append(ms, m)
	}
	return Derive(shard, h, ms), nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
