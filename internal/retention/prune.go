package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Orphan is an object no listing rule makes part of a restore point: the
// chunks of a snapshot without a manifest (an interrupted snapshot or
// delete), a segment hidden inside a bigger one (an interrupted
// compaction), or the index of a segment that is gone or hidden. Only
// orphans older than the grace period are removed.
type Orphan struct {
	Key     string
	Size    int64
	ModTime time.Time
	Reason  string
}

// Result is a planned (and, unless a dry run, carried out) prune.
type Result struct {
	Now       time.Time
	Policy    Policy
	Decisions []Decision
	// DropClusters are the cluster snapshots none of whose parts stay:
	// their manifests go first.
	DropClusters []string
	Orphans      []Orphan
	// Filled in by Prune.
	DeletedSnapshots, DeletedSegments, DeletedOrphans, CopiedSegments int
	DeletedBytes                                                      int64
	// Held is what the repository's object lock keeps for now, with when
	// a later prune may delete it; empty without an object lock.
	Held []Held
}

// Plan lists the repository and decides what a prune would do. Reading
// manifests needs the identity of an encrypted repository.
func Plan(ctx context.Context, r *repo.Repository, p Policy, now time.Time) (Result, error) {
	if p.Grace <= 0 {
		p.Grace = DefaultGrace
	}
	res := Result{Now: now, Policy: p}
	cat, err := catalog.Load(ctx, r)
	if errors.Is(err, repo.ErrNeedIdentity) {
		return res, fmt.Errorf("plan prune: %w; pruning reads the snapshot manifests: give the repository's identity (--identity, or `identity:` for the agent)", err)
	}
	if err != nil {
		return res, fmt.Errorf("plan prune: %w", err)
	}
	var shards []Shard
	for _, sh := range cat.Shards {
		in := Shard{ID: sh.ID, Timelines: sh.Timelines}
		for _, s := range sh.Snapshots {
			in.Snapshots = append(in.Snapshots, Snapshot{Shard: s.Shard, ID: s.ID, Start: s.Start, End: s.End,
				FromEmptyOplog: s.Manifest.FromEmptyOplog})
		}
		shards = append(shards, in)
	}
	clusters, err := clusterSets(ctx, r)
	if err != nil {
		return res, fmt.Errorf("plan prune: %w", err)
	}
	res.Decisions, res.DropClusters = decideClusters(p, shards, clusters, now)
	if res.Orphans, err = findOrphans(ctx, r, cat, now.Add(-p.Grace)); err != nil {
		return res, fmt.Errorf("plan prune: %w", err)
	}
	if err := res.hold(ctx, r, now); err != nil {
		return res, fmt.Errorf("plan prune: %w", err)
	}
	return res, nil
}

// findOrphans lists chunks of snapshots without a manifest and segments
// hidden by a bigger one, older than before.
func findOrphans(ctx context.Context, r *repo.Repository, cat catalog.Catalog, before time.Time) ([]Orphan, error) {
	complete := map[string]bool{}
	visible := map[string]bool{}
	for _, sh := range cat.Shards {
		for _, s := range sh.Snapshots {
			complete[sh.ID+"/"+s.ID] = true
		}
		for _, tl := range sh.Timelines {
			for _, s := range tl.Segments {
				visible[s.Key] = true
			}
		}
	}
	var out []Orphan
	err := r.Store().List(ctx, "data/", func(i storage.Info) error {
		parts := strings.SplitN(strings.TrimPrefix(i.Key, "data/"), "/", 3)
		if len(parts) == 3 && !complete[parts[0]+"/"+parts[1]] && i.ModTime.Before(before) {
			out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
				Reason: "chunk of snapshot " + parts[1] + ", which has no manifest (interrupted snapshot or delete)"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list data objects: %w", err)
	}
	for _, sh := range cat.Shards {
		live := map[string]bool{}
		for _, tl := range sh.Timelines {
			for _, seg := range tl.Segments {
				live[seg.Timeline] = true
			}
		}
		err := r.Store().List(ctx, "timelines/"+sh.ID+"/", func(i storage.Info) error {
			id := strings.TrimPrefix(i.Key, "timelines/"+sh.ID+"/")
			if IsExtract(id) && !live[id] && i.ModTime.Before(before) {
				out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
					Reason: "record of a timeline prune copied out, whose segments are all gone"})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list timelines: %w", err)
		}
		err = r.Store().List(ctx, "oplog/"+sh.ID+"/", func(i storage.Info) error {
			if !visible[i.Key] && i.ModTime.Before(before) {
				out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
					Reason: "segment contained in a bigger one of its timeline (interrupted compaction)"})
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list segments: %w", err)
		}
		if out, err = indexOrphans(ctx, r, sh.ID, visible, before, out); err != nil {
			return nil, err
		}
		if out, err = drillOrphans(ctx, r, sh, before, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// drillOrphans adds, older than before, the drill references whose point
// no restore window holds any more (nothing can restore it, so no drill
// will compare with it; a window this prune closes is seen by the next
// one) and the drill results beyond the newest repo.DrillResultsKept.
func drillOrphans(ctx context.Context, r *repo.Repository, sh catalog.Shard, before time.Time, out []Orphan) ([]Orphan, error) {
	var results []storage.Info
	err := r.Store().List(ctx, repo.DrillPrefix(sh.ID), func(i storage.Info) error {
		rest := strings.TrimPrefix(i.Key, repo.DrillPrefix(sh.ID))
		if point, ok := strings.CutPrefix(rest, "ref/"); ok {
			ts, err := optime.ParseKey(point)
			if err == nil && !slices.ContainsFunc(sh.Windows, func(w catalog.Window) bool { return w.Contains(ts) }) && i.ModTime.Before(before) {
				out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
					Reason: "drill reference of a point no restore window holds any more"})
			}
		} else if strings.HasPrefix(rest, "run/") {
			results = append(results, i) // in key order: oldest first
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list drill records: %w", err)
	}
	for _, i := range results[:max(0, len(results)-repo.DrillResultsKept)] {
		if i.ModTime.Before(before) {
			out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
				Reason: fmt.Sprintf("drill result older than the newest %d", repo.DrillResultsKept)})
		}
	}
	return out, nil
}

// indexOrphans adds the indexes of segments that are not visible (deleted,
// or hidden by a bigger one), older than before: what an interrupted
// delete or compaction leaves. A hidden segment's index goes with it.
func indexOrphans(ctx context.Context, r *repo.Repository, shard string, visible map[string]bool, before time.Time, out []Orphan) ([]Orphan, error) {
	err := r.Store().List(ctx, repo.IndexKey("oplog/"+shard+"/"), func(i storage.Info) error {
		seg, _ := repo.SegmentKeyOfIndex(i.Key)
		if !visible[seg] && i.ModTime.Before(before) {
			out = append(out, Orphan{Key: i.Key, Size: i.Size, ModTime: i.ModTime,
				Reason: "index of a segment that is gone or hidden in a bigger one (interrupted delete or compaction)"})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list segment indexes: %w", err)
	}
	return out, nil
}

// Prune plans and carries out a prune. lock is the held exclusive lock: it
// is switched to deleting mode (which shared readers exclude) for the
// deletes. The order keeps every promised restore point whole at every
// moment: extracted segments are copied before their originals go; a
// snapshot's manifest goes before its chunks; segments go from the outer
// ends of a timeline inwards, so what is left is always one unbroken run.
// A prune that deletes something is recorded in the repository's audit
// entries (repo.Audited), which it never deletes.
func Prune(ctx context.Context, r *repo.Repository, lock *repo.Lock, p Policy, now time.Time, log *slog.Logger) (Result, error) {
	if log == nil {
		log = slog.Default()
	}
	res, err := Plan(ctx, r, p, now)
	if err != nil {
		return res, err
	}
	defer res.logHeld(log)
	if !res.changes() {
		return res, nil // deletes nothing: no audit entry
	}
	out, err := repo.Audited(ctx, r, log, repo.AuditEntry{Action: repo.AuditPrune}, func() (Result, error) {
		err := res.carryOut(ctx, r, lock, log)
		return res, err
	}, func(res Result) string {
		return fmt.Sprintf("deleted %d snapshots, %d segments, %d orphans (%d bytes), copied %d segments",
			res.DeletedSnapshots, res.DeletedSegments, res.DeletedOrphans, res.DeletedBytes, res.CopiedSegments)
	})
	if errors.Is(err, repo.ErrNotAudited) {
		return res, fmt.Errorf("%w; nothing was deleted", err)
	}
	return out, err
}

// carryOut does what Plan decided: copies the extracts, then deletes in
// deleting mode.
func (res *Result) carryOut(ctx context.Context, r *repo.Repository, lock *repo.Lock, log *slog.Logger) error {
	for _, d := range res.Decisions {
		for _, ex := range d.Extracts {
			n, err := copyExtract(ctx, r, ex)
			res.CopiedSegments += n
			if err != nil {
				return err
			}
		}
	}
	if err := lock.BeginDelete(ctx); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	defer endDelete(ctx, lock)
	if err := res.deleteAll(ctx, r, lock); err != nil {
		return err
	}
	log.Info("pruned the repository", "snapshots", res.DeletedSnapshots, "segments", res.DeletedSegments,
		"orphans", res.DeletedOrphans, "copied_segments", res.CopiedSegments, "bytes", res.DeletedBytes)
	return nil
}

// endDelete leaves deleting mode once the deletes are done or failed, so
// readers may lock again; it is bounded, since ctx may be cancelled. A lock
// lost meanwhile (ctx's cause is repo.ErrLockLost) is not written back:
// another process may hold the repository by now.
func endDelete(ctx context.Context, lock *repo.Lock) {
	if errors.Is(context.Cause(ctx), repo.ErrLockLost) {
		return
	}
	ectx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	_ = lock.EndDelete(ectx)
}

// changes reports whether the plan deletes anything.
func (res Result) changes() bool {
	if len(res.Orphans) > 0 || len(res.DropClusters) > 0 {
		return true
	}
	for _, d := range res.Decisions {
		if len(d.DropSnapshots()) > 0 || len(d.DropSegments()) > 0 {
			return true
		}
	}
	return false
}

// stillDeleting re-enters deleting mode if another job of the same holder
// (the agent's compaction) left it meanwhile; it fails if a reader got in.
func stillDeleting(ctx context.Context, lock *repo.Lock) error {
	if lock.Info().Deleting {
		return nil
	}
	if err := lock.BeginDelete(ctx); err != nil {
		return fmt.Errorf("prune: %w", err)
	}
	return nil
}

func (res *Result) deleteAll(ctx context.Context, r *repo.Repository, lock *repo.Lock) error {
	for _, id := range res.DropClusters {
		if err := stillDeleting(ctx, lock); err != nil {
			return err
		}
		if err := r.DeleteClusterManifest(ctx, id); err != nil && !res.heldError(err, "cluster snapshot "+id) {
			return fmt.Errorf("prune cluster snapshot %s: %w", id, err)
		}
	}
	for _, d := range res.Decisions {
		for _, s := range d.DropSnapshots() {
			if err := stillDeleting(ctx, lock); err != nil {
				return err
			}
			if err := r.DeleteSnapshot(ctx, s.Shard, s.ID); err != nil {
				if res.heldError(err, "snapshot "+s.ID) {
					continue
				}
				return fmt.Errorf("prune snapshot %s: %w", s.ID, err)
			}
			res.DeletedSnapshots++
		}
	}
	for _, d := range res.Decisions {
	segments:
		for _, seg := range deleteOrder(d) {
			if err := stillDeleting(ctx, lock); err != nil {
				return err
			}
			if err := r.DeleteSegment(ctx, seg); err != nil {
				if res.heldError(err, "segments of timeline "+seg.Timeline) {
					break segments // deleting past it would leave a hole
				}
				return fmt.Errorf("prune: %w", err)
			}
			res.DeletedSegments++
			res.DeletedBytes += seg.Size
		}
	}
	for _, o := range res.Orphans {
		if err := stillDeleting(ctx, lock); err != nil {
			return err
		}
		if err := remove(ctx, r, o.Key); err != nil {
			if res.heldError(err, o.Key) {
				continue
			}
			return err
		}
		res.DeletedOrphans++
		res.DeletedBytes += o.Size
	}
	return nil
}

// deleteOrder returns the segments to drop: per timeline, those before the
// kept run oldest first, then those after it newest first.
func deleteOrder(d Decision) []repo.SegmentInfo {
	var out []repo.SegmentInfo
	for _, side := range deleteSides(d) {
		out = append(out, side...)
	}
	return out
}

// deleteSides returns, per timeline, the segments to drop before the kept
// run oldest first, and those after it newest first: deleting each list
// in order keeps what is left one unbroken run.
func deleteSides(d Decision) [][]repo.SegmentInfo {
	var out [][]repo.SegmentInfo
	byTimeline := map[string][]SegmentRun{}
	var order []string
	for _, r := range d.Runs {
		if _, ok := byTimeline[r.Timeline]; !ok {
			order = append(order, r.Timeline)
		}
		byTimeline[r.Timeline] = append(byTimeline[r.Timeline], r)
	}
	for _, id := range order {
		var before, after []repo.SegmentInfo
		seenKept := false
		for _, r := range byTimeline[id] {
			switch {
			case r.Keep:
				seenKept = true
			case seenKept:
				after = append(after, r.Segments...)
			default:
				before = append(before, r.Segments...)
			}
		}
		slices.Reverse(after)
		out = append(out, before, after)
	}
	return out
}

func remove(ctx context.Context, r *repo.Repository, key string) error {
	if err := r.Store().Delete(ctx, key); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("prune: delete object %s: %w", key, err)
	}
	return nil
}

// copyExtract copies a block of segments to its own timeline, byte for
// byte (no identity needed: the envelope does not name its key), after the
// timeline's record, each followed by its index when it has one (an index
// does not name its timeline either). Objects already copied are skipped.
func copyExtract(ctx context.Context, r *repo.Repository, ex Extract) (int, error) {
	info, err := r.ReadTimeline(ctx, ex.Shard, ex.From)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		info = repo.TimelineInfo{Shard: ex.Shard, Started: time.Now()}
	case err != nil:
		return 0, fmt.Errorf("prune: copy timeline %s: %w", ex.From, err)
	}
	info.ID = ex.ID
	if err := r.WriteTimeline(ctx, info); err != nil {
		return 0, fmt.Errorf("prune: %w", err)
	}
	n := 0
	for _, s := range ex.Segments {
		key, err := retimeline(s.Key, ex.ID)
		if err != nil {
			return n, fmt.Errorf("prune: %w", err)
		}
		if _, err := r.Store().Stat(ctx, key); err != nil {
			if err := copyObject(ctx, r.Store(), s.Key, key); err != nil {
				return n, fmt.Errorf("prune: copy segment %s to timeline %s: %w", s.Key, ex.ID, err)
			}
			n++
		}
		if err := copyIndex(ctx, r.Store(), s.Key, key); err != nil {
			return n, fmt.Errorf("prune: copy the index of segment %s to timeline %s: %w", s.Key, ex.ID, err)
		}
	}
	return n, nil
}

// copyIndex copies the index of segment from to segment to, unless the
// copy exists or from has none (a segment written before indexes: readers
// fall back to the segment).
func copyIndex(ctx context.Context, st storage.Store, from, to string) error {
	if _, err := st.Stat(ctx, repo.IndexKey(to)); err == nil {
		return nil
	}
	err := copyObject(ctx, st, repo.IndexKey(from), repo.IndexKey(to))
	if errors.Is(err, storage.ErrNotFound) {
		return nil
	}
	return err
}

// retimeline returns a segment's key with another timeline id: the
// timeline is the third "_"-separated field of the key's name, whatever
// follows it (see docs/FORMAT.md).
func retimeline(key, timeline string) (string, error) {
	dir, name, ok := cutLast(key, "/")
	parts := strings.Split(name, "_")
	if !ok || len(parts) < 3 {
		return "", fmt.Errorf("segment key %q: want FIRST_LAST_TIMELINE_BEFORE", key)
	}
	parts[2] = timeline
	return dir + "/" + strings.Join(parts, "_"), nil
}

func cutLast(s, sep string) (string, string, bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

func copyObject(ctx context.Context, st storage.Store, from, to string) error {
	rc, err := st.Get(ctx, from)
	if err != nil {
		return err
	}
	defer rc.Close()
	return st.Put(ctx, to, rc)
}
