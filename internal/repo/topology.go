package repo

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// Topology is one record of a sharded cluster's shards, written when
// capture starts with a topology the repository has not recorded yet and
// at every change seen while capturing (a shard added to or removed from
// the config server's config.shards). The cluster's restore window breaks
// at a change, like at a gap, until the next cluster snapshot.
type Topology struct {
	// At is when the topology was seen (the agent's clock, UTC, to the
	// millisecond).
	At time.Time `bson:"at"`
	// Cluster is the whole topology from At on.
	Cluster Cluster `bson:"cluster"`
	// Added and Removed name the shards that changed since the previous
	// record; both empty in the first record.
	Added   []string `bson:"added,omitempty"`
	Removed []string `bson:"removed,omitempty"`
}

// topologyLayout names topology objects so that they sort by time.
const topologyLayout = "20060102T150405.000000000Z"

func topologyKey(at time.Time) string { return prefixTopology + at.UTC().Format(topologyLayout) }

// WriteTopology stores a topology record under topology/<at>.
func (r *Repository) WriteTopology(ctx context.Context, t Topology) error {
	t.At = t.At.UTC().Truncate(time.Millisecond) // what BSON keeps
	for _, s := range t.Cluster.Shards {
		if err := checkShard(s.Name); err != nil {
			return fmt.Errorf("write topology: %w", err)
		}
	}
	return r.putBSON(ctx, topologyKey(t.At), KindTopology, t)
}

// ListTopology reads every topology record, oldest first (none: the
// repository backs up a replica set, or no cluster agent ran yet).
func (r *Repository) ListTopology(ctx context.Context) ([]Topology, error) {
	infos, err := r.listKeys(ctx, prefixTopology)
	if err != nil {
		return nil, err
	}
	out := make([]Topology, 0, len(infos))
	for _, i := range infos {
		var t Topology
		if err := r.getBSON(ctx, i.Key, KindTopology, &t); err != nil {
			return nil, err
		}
		at, err := time.Parse(topologyLayout, strings.TrimPrefix(i.Key, prefixTopology))
		if err != nil || !at.Equal(t.At) {
			return nil, fmt.Errorf("decode object %s: %w: holds a topology seen at %s", i.Key, ErrCorrupt, t.At)
		}
		out = append(out, t)
	}
	return out, nil
}
