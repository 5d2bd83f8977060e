package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// orphanFilter skips, while a cluster restore loads its shards' snapshot
// parts, every document a part's shard did not own at the cluster
// snapshot's time: a copy a chunk migration left on its donor (an
// interrupted migration leaves one on each side, and a finished one on
// the donor until its range deleter runs), or a document of an unsharded
// collection on a shard other than its database's primary. Ownership is
// the routing metadata the cluster snapshot stored (cluster.Owners).
type orphanFilter struct {
	owners   *cluster.Owners
	shardOf  map[string]string // snapshot chunk object key → its part's shard
	snapshot string
}

// Orphan filtering states a plan's Orphans starts with.
const (
	OrphansSkipped    = "skipped"
	OrphansNotSkipped = "not skipped"
)

// prepareOrphans decides whether a cluster plan can skip orphaned
// documents and says so in p.Orphans: it can when every shard's part is a
// part of one complete cluster snapshot that stores its routing metadata
// (taken with the config server). Otherwise the restore loads every
// part whole, and Orphans says why and what to do. It fails only when the
// cluster manifest cannot be read.
func (p *Plan) prepareOrphans(ctx context.Context, r *repo.Repository) error {
	if len(p.Parts) == 0 {
		return nil
	}
	id := p.Parts[0].Snapshot.ID
	for _, part := range p.Parts[1:] {
		if part.Snapshot.ID != id {
			p.Orphans = OrphansNotSkipped + ": the shards' snapshots are not the parts of one cluster snapshot (taken shard by shard), so no routing metadata says which shard owned what; restore to a point after a cluster snapshot (`rewind snapshot` of the whole cluster) to skip orphaned documents"
			return nil
		}
	}
	m, err := r.ReadClusterManifest(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		p.Orphans = fmt.Sprintf("%s: snapshot %s is no complete cluster snapshot (its shards were snapshotted one by one), so no routing metadata says which shard owned what; restore to a point after a cluster snapshot (`rewind snapshot` of the whole cluster) to skip orphaned documents", OrphansNotSkipped, id)
		return nil
	case err != nil:
		return fmt.Errorf("read cluster snapshot %s for its routing metadata: %w", id, err)
	case m.ConfigServer == "":
		p.Orphans = fmt.Sprintf("%s: cluster snapshot %s was taken without the config server, so it stores no routing metadata (config.chunks); give --config-server (or a mongos --source) to `rewind snapshot` and the agent so later cluster snapshots let a restore skip orphaned documents", OrphansNotSkipped, id)
		return nil
	}
	owners, err := cluster.NewOwners(m.Routing.Databases, m.Routing.Collections, m.Routing.Chunks)
	if err != nil {
		p.Orphans = fmt.Sprintf("%s: the routing metadata of cluster snapshot %s cannot be read (%v); every shard's part is loaded whole", OrphansNotSkipped, id, err)
		return nil
	}
	f := &orphanFilter{owners: owners, shardOf: map[string]string{}, snapshot: id}
	for _, part := range p.Parts {
		for _, c := range part.Snapshot.Manifest.Collections {
			for _, ref := range c.Chunks {
				f.shardOf[ref.Key] = part.Shard
			}
		}
	}
	p.orphans = f
	p.Orphans = fmt.Sprintf("%s: a document a shard did not own at cluster snapshot %s's time (its stored config.chunks, or its database's primary shard for an unsharded collection) is not loaded", OrphansSkipped, id)
	return nil
}

// orphanCounts are what the filter did with one source collection.
type orphanCounts struct {
	skipped   int64 // documents not loaded: their shard did not own them
	undecided int64 // documents loaded because their owner could not be computed
	why       error // why the first undecided one was
}

// owned keeps the documents of chunk j its part's shard owned and counts
// the others into counts. A document whose owner cannot be computed (an
// array or a Timestamp in a hashed shard key) or that the routing names no
// owner for (a database it does not list, a key in no chunk) is kept: the
// filter drops only what the routing proves is another shard's.
func (f *orphanFilter) owned(j chunkJob, docs []bson.Raw, counts *orphanCounts) []bson.Raw {
	if f == nil {
		return docs
	}
	shard, ok := f.shardOf[j.ref.Key]
	if !ok {
		return docs
	}
	ns := j.coll.Source.String()
	kept := docs[:0]
	for _, d := range docs {
		owner, err := f.owners.Owner(ns, d)
		switch {
		case err != nil:
			counts.undecided++
			if counts.why == nil {
				counts.why = err
			}
		case owner != "" && owner != shard:
			counts.skipped++
			continue
		}
		kept = append(kept, d)
	}
	return kept
}

// warnOrphans warns, once per load, when a cluster restore cannot skip
// orphaned documents.
func warnOrphans(log *slog.Logger, p Plan) {
	if len(p.Parts) > 0 && p.orphans == nil {
		log.Warn("orphaned documents are not skipped: every shard's snapshot part is loaded whole, so a document a chunk migration left on two shards fails the load as a duplicate _id, or is loaded from the shard that did not own it", "why", p.Orphans)
	}
}

// logOrphans says, after a cluster restore's load, how many orphaned
// documents it skipped per collection, and how many it loaded without
// knowing their owner.
func logOrphans(log *slog.Logger, p Plan, counts map[Namespace]*orphanCounts) {
	if p.orphans == nil {
		return
	}
	names := make([]Namespace, 0, len(counts))
	for ns := range counts {
		names = append(names, ns)
	}
	sort.Slice(names, func(a, b int) bool { return names[a].String() < names[b].String() })
	for _, ns := range names {
		c := counts[ns]
		if c.skipped > 0 {
			log.Info("orphaned documents skipped", "ns", ns.String(), "count", c.skipped, "cluster snapshot", p.orphans.snapshot)
		}
		if c.undecided > 0 {
			log.Warn("documents loaded whose owning shard cannot be computed", "ns", ns.String(), "count", c.undecided, "first", c.why.Error())
		}
	}
}
