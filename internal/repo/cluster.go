package repo

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage"
)

// ClusterPart is one shard's part of a cluster snapshot: the per-shard
// snapshot snapshots/SHARD/ID (a Manifest like any other, with the
// cluster snapshot's ID), and how far that shard's stored oplog is proven
// complete.
type ClusterPart struct {
	Shard string           `bson:"shard"`
	Start optime.Timestamp `bson:"start"` // the part's Manifest.Start
	End   optime.Timestamp `bson:"end"`   // the part's Manifest.End (≤ the cluster's T)
	// CoveredThrough is at or after the cluster's T: every entry of the
	// shard's oplog at or before it was stored when the cluster manifest
	// was written (on the part's timeline, see invariant 14).
	CoveredThrough optime.Timestamp `bson:"coveredThrough"`
}

// Routing is a cluster's routing metadata as the config server held it
// while the snapshot ran: the documents of config.databases (primary
// shards), config.collections (shard keys, options), config.chunks (which
// shard owns which range of each collection's shard key), config.tags
// (zones) and config.settings (without the balancer's own document), raw.
type Routing struct {
	Databases   []bson.Raw `bson:"databases"`
	Collections []bson.Raw `bson:"collections"`
	Chunks      []bson.Raw `bson:"chunks"`
	Tags        []bson.Raw `bson:"tags"`
	Settings    []bson.Raw `bson:"settings"`
	// Read is when the config server was read (its clock, a timestamp
	// with I 0; zero when it could not tell).
	Read optime.Timestamp `bson:"read"`
}

// Balancer states a cluster manifest records.
const (
	// BalancerStopped: the snapshot stopped the balancer through mongos
	// and waited for running migrations to finish.
	BalancerStopped = "stopped"
	// BalancerWasOff: it was already off; the snapshot left it so.
	BalancerWasOff = "was-off"
	// BalancerUnknown: no mongos was given (explicit shards): the
	// operator answers for migrations during the copy.
	BalancerUnknown = "unknown"
)

// ClusterManifest describes a complete cluster snapshot, stored at
// clusters/ID after every part's manifest: without it, the parts are
// per-shard snapshots only.
type ClusterManifest struct {
	ID string `bson:"id"`
	// T is the cluster time the snapshot is consistent at: the latest of
	// the parts' ends. Each shard's state at T is its part replayed with
	// its oplog up to T.
	T        optime.Timestamp `bson:"t"`
	Started  time.Time        `bson:"started"`
	Finished time.Time        `bson:"finished"`
	Parts    []ClusterPart    `bson:"parts"` // sorted by shard
	// ConfigServer names the part of the config server replica set
	// ("config"), "" when it was not given.
	ConfigServer string  `bson:"configServer,omitempty"`
	Routing      Routing `bson:"routing"`
	Balancer     string  `bson:"balancer"`
}

// Shards lists the parts' shards.
func (m ClusterManifest) Shards() []string {
	out := make([]string, len(m.Parts))
	for i, p := range m.Parts {
		out[i] = p.Shard
	}
	return out
}

func clusterKey(id string) string { return prefixClusters + id }

func (m ClusterManifest) validate() error {
	if err := checkID("snapshot id", m.ID, ""); err != nil {
		return err
	}
	if len(m.Parts) == 0 {
		return errors.New("no part")
	}
	for _, p := range m.Parts {
		if err := checkShard(p.Shard); err != nil {
			return err
		}
		if p.End.After(m.T) || p.CoveredThrough.Before(m.T) || p.End.Before(p.Start) {
			return fmt.Errorf("part %s: start %s, end %s, covered through %s do not fit T %s", p.Shard, p.Start, p.End, p.CoveredThrough, m.T)
		}
	}
	return nil
}

// WriteClusterManifest makes a cluster snapshot exist. It first checks
// that every part's manifest is stored, then writes clusters/ID.
func (r *Repository) WriteClusterManifest(ctx context.Context, m ClusterManifest) error {
	m.Started, m.Finished = m.Started.UTC(), m.Finished.UTC()
	if err := m.validate(); err != nil {
		return fmt.Errorf("write cluster manifest: %v: %w", err, ErrInvalid)
	}
	for _, p := range m.Parts {
		if _, err := r.store.Stat(ctx, manifestKey(p.Shard, m.ID)); err != nil {
			return fmt.Errorf("write cluster manifest %s: part of shard %s: %w", m.ID, p.Shard, err)
		}
	}
	return r.putBSON(ctx, clusterKey(m.ID), KindClusterManifest, m)
}

// ReadClusterManifest loads a cluster snapshot's manifest.
func (r *Repository) ReadClusterManifest(ctx context.Context, id string) (ClusterManifest, error) {
	var m ClusterManifest
	if err := checkID("snapshot id", id, ""); err != nil {
		return m, fmt.Errorf("read cluster manifest: %w", err)
	}
	key := clusterKey(id)
	if err := r.getBSON(ctx, key, KindClusterManifest, &m); err != nil {
		return m, err
	}
	if err := m.validate(); err != nil || m.ID != id {
		return m, fmt.Errorf("decode object %s: %w: cluster manifest %s: %v", key, ErrCorrupt, m.ID, err)
	}
	return m, nil
}

// ListClusterSnapshots lists the ids of complete cluster snapshots, oldest
// first.
func (r *Repository) ListClusterSnapshots(ctx context.Context) ([]string, error) {
	infos, err := r.listKeys(ctx, prefixClusters)
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		id := strings.TrimPrefix(i.Key, prefixClusters)
		if checkID("snapshot id", id, "/") != nil {
			return nil, fmt.Errorf("list cluster snapshots: %w: unexpected key %q", ErrCorrupt, i.Key)
		}
		out = append(out, id)
	}
	return out, nil
}

// DeleteClusterManifest removes a cluster snapshot's manifest (not its
// parts, which are per-shard snapshots). The caller holds the exclusive
// lock.
func (r *Repository) DeleteClusterManifest(ctx context.Context, id string) error {
	if err := checkID("snapshot id", id, ""); err != nil {
		return fmt.Errorf("delete cluster manifest: %w", err)
	}
	return r.deleteIfExists(ctx, clusterKey(id))
}

// BalancerRecord says that a cluster snapshot stopped the cluster's
// balancer and has not re-enabled it yet. It is written before
// balancerStop and removed after balancerStart succeeds, so a snapshot or
// agent that finds it (the one that wrote it crashed) re-enables the
// balancer first.
type BalancerRecord struct {
	Stopped  time.Time `bson:"stopped"`
	Snapshot string    `bson:"snapshot"`
	Host     string    `bson:"host"`
	PID      int       `bson:"pid"`
}

// WriteBalancerRecord stores the record at balancer.
func (r *Repository) WriteBalancerRecord(ctx context.Context, b BalancerRecord) error {
	b.Stopped = b.Stopped.UTC()
	return r.putBSON(ctx, balancerKey, KindBalancer, b)
}

// ReadBalancerRecord loads the record; ok is false when there is none.
func (r *Repository) ReadBalancerRecord(ctx context.Context) (b BalancerRecord, ok bool, err error) {
	err = r.getBSON(ctx, balancerKey, KindBalancer, &b)
	if errors.Is(err, storage.ErrNotFound) {
		return b, false, nil
	}
	return b, err == nil, err
}

// DeleteBalancerRecord removes the record once the balancer runs again.
func (r *Repository) DeleteBalancerRecord(ctx context.Context) error {
	return r.deleteIfExists(ctx, balancerKey)
}
