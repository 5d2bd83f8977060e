package status

import (
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
)

// ShardList is one shard's part of `rewind list --json` (and of GET
// /api/v1/timeline for a sharded cluster): what can be restored from it.
type ShardList struct {
	Shard string `json:"shard"`
	// CoveredThrough is how far the shard's oplog is known complete (its
	// heartbeat's), for a cluster's shard; a cluster's shard windows on its
	// newest timeline reach it.
	CoveredThrough *TS        `json:"covered_through,omitempty"`
	Windows        []Window   `json:"windows"`
	Gaps           []Gap      `json:"gaps"`
	Snapshots      []Snapshot `json:"snapshots"`
	Timelines      []Timeline `json:"timelines"`
}

// ListShards converts every shard of the catalog, in its order. In a
// sharded cluster's repository (cat.Cluster set) a shard's windows are as
// a cluster restore sees them (catalog.Shard.Reach: run on to its
// covered-through time), and its covered-through time is given.
func ListShards(cat catalog.Catalog) []ShardList {
	out := []ShardList{}
	for _, sh := range cat.Shards {
		h := repo.History{Timelines: sh.Timelines, Gaps: sh.Gaps}
		s := ShardList{Shard: sh.ID, Windows: Windows(sh.Windows), Gaps: Gaps(h), Snapshots: Snapshots(sh.Snapshots), Timelines: Timelines(h)}
		if len(cat.Cluster) > 0 {
			s.Windows, s.CoveredThrough = Windows(sh.Reach()), ToTS(sh.Covered)
		}
		out = append(out, s)
	}
	return out
}
