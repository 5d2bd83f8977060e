package retention

import (
	"context"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
)

// clusterSets reads every cluster manifest. A kept cluster snapshot keeps
// all its parts, and each part's oplog through the cluster's T: its parts
// are kept together.
func clusterSets(ctx context.Context, r *repo.Repository) ([]repo.ClusterManifest, error) {
	ids, err := r.ListClusterSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]repo.ClusterManifest, 0, len(ids))
	for _, id := range ids {
		m, err := r.ReadClusterManifest(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// decideClusters runs Decide for every shard with the cluster snapshots
// in mind: a part is replayed through its cluster's T (Snapshot.Through),
// and when any part of a cluster snapshot stays, every part stays (a
// second Decide pins them; pinning only adds keeps, so one more pass is
// enough). It returns the shards' decisions and the cluster manifests to
// delete: those none of whose parts stay.
func decideClusters(p Policy, shards []Shard, clusters []repo.ClusterManifest, now time.Time) ([]Decision, []string) {
	through := map[string]repo.ClusterManifest{} // "shard/id"
	for _, m := range clusters {
		for _, part := range m.Parts {
			through[part.Shard+"/"+m.ID] = m
		}
	}
	for i := range shards {
		for j, s := range shards[i].Snapshots {
			if m, ok := through[s.Shard+"/"+s.ID]; ok {
				shards[i].Snapshots[j].Through = m.T
			}
		}
	}
	decide := func() (map[string]bool, []Decision) {
		kept, out := map[string]bool{}, make([]Decision, 0, len(shards))
		for _, sh := range shards {
			d := Decide(p, sh, now)
			for _, s := range d.Snapshots {
				if s.Keep {
					kept[s.Shard+"/"+s.ID] = true
				}
			}
			out = append(out, d)
		}
		return kept, out
	}
	kept, decisions := decide()
	keptCluster, drop := map[string]bool{}, []string{}
	for _, m := range clusters {
		for _, part := range m.Parts {
			keptCluster[m.ID] = keptCluster[m.ID] || kept[part.Shard+"/"+m.ID]
		}
		if !keptCluster[m.ID] {
			drop = append(drop, m.ID)
		}
	}
	pinned := false
	for i := range shards {
		for j, s := range shards[i].Snapshots {
			if m, ok := through[s.Shard+"/"+s.ID]; ok && keptCluster[m.ID] && !kept[s.Shard+"/"+s.ID] {
				shards[i].Snapshots[j].Pinned = fmt.Sprintf("part of kept cluster snapshot %s", m.ID)
				pinned = true
			}
		}
	}
	if pinned {
		_, decisions = decide()
	}
	return decisions, drop
}
