package verify

import (
	"context"
	"errors"
	"fmt"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// checkClusters checks that every cluster snapshot's manifest reads and
// that each part it names is stored as a per-shard snapshot: a cluster
// snapshot with a part missing restores no cluster.
func (rep *Report) checkClusters(ctx context.Context, r *repo.Repository, keys map[string]storage.Info) error {
	ids, err := r.ListClusterSnapshots(ctx)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	for _, id := range ids {
		key := "clusters/" + id
		rep.Objects++
		rep.Bytes += keys[key].Size
		m, err := r.ReadClusterManifest(ctx, id)
		if errors.Is(err, repo.ErrNeedIdentity) || errors.Is(err, repo.ErrWrongKey) {
			return fmt.Errorf("verify: %w", err)
		}
		if err != nil {
			rep.add(Finding{Severity: Problem, Kind: kindOf(err), Object: key,
				Message: fmt.Sprintf("manifest of cluster snapshot %s cannot be read: %v", id, err)})
			continue
		}
		for _, p := range m.Parts {
			part := "snapshots/" + p.Shard + "/" + id
			if _, ok := keys[part]; !ok {
				rep.add(Finding{Severity: Problem, Kind: "missing", Object: part,
					Message: fmt.Sprintf("cluster snapshot %s (consistent at %s) names the part of shard %s, which is not in the repository: the cluster cannot be restored from it; each other shard's part still restores that shard alone", id, m.T, p.Shard)})
			}
		}
	}
	return nil
}
