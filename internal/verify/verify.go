// Package verify checks a repository: its structure from a listing (every
// manifest's objects exist, timelines are ordered and their gaps recorded,
// nothing orphaned), optionally every object's bytes (read, decrypted,
// decompressed, checksummed), and optionally a trial restore. Every problem
// names the object, the restore points it breaks and what stays restorable.
package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Severity of a finding: problems make the repository unhealthy (`rewind
// verify` exits 3); notes do not (orphans are cleaned by prune; partial
// overlaps are allowed by the format).
const (
	Problem = "problem"
	Note    = "note"
)

// Range is a range of restore points of one window.
type Range struct {
	Shard, Snapshot, Timeline string
	From, To                  optime.Timestamp
}

// Finding is one thing verify found.
type Finding struct {
	Severity string
	Kind     string // missing, corrupt, unreadable, no-gap-record, no-timeline-record, overlap, orphan, no-index, unknown-key, nothing-restorable
	Object   string // the object's key, when it is about one object
	Message  string
	Breaks   []Range // restore points it makes unrestorable
}

// Options configure Run.
type Options struct {
	ReadData bool // read and check every object's bytes
	Parallel int  // objects read at once (default DefaultParallel)
	// ReadMemory bounds the object plaintext ReadData holds at once, in
	// bytes (default DefaultReadMemory): a worker waits before reading an
	// object that would take more. A chunk counts at its plaintext size
	// (from its manifest), a segment, whose plaintext size is known only
	// once read, at segmentExpansion times its stored size; an object
	// larger than the whole budget is read alone.
	ReadMemory int64
}

// Defaults of Options. Reading is CPU-bound (SHA-256, zstd, BSON
// validation), so a few workers per core are enough; 256 MiB holds 32
// snapshot chunks of the default 8 MiB.
const (
	DefaultParallel   = 4
	DefaultReadMemory = 256 << 20
)

// Report is the outcome of Run.
type Report struct {
	Findings []Finding
	Shards   int
	// Objects and Bytes count what was checked (listed, or read with
	// ReadData); ReadTime is the time spent reading.
	Objects   int
	Bytes     int64
	ReadBytes int64 // stored bytes read back with ReadData
	ReadTime  time.Duration
	Windows   []Range // restore windows as listed
	Remaining []Range // what stays restorable given the problems, merged per shard
}

// Healthy reports whether no problem was found.
func (r Report) Healthy() bool { return len(r.Problems()) == 0 }

// Problems returns the findings of severity Problem.
func (r Report) Problems() []Finding {
	var out []Finding
	for _, f := range r.Findings {
		if f.Severity == Problem {
			out = append(out, f)
		}
	}
	return out
}

// damage is a problem object and how it breaks windows.
type damage struct {
	snapshot string            // a manifest or chunk of this snapshot
	segment  *repo.SegmentInfo // or this segment
}

// shardState is what one shard's checks work on.
type shardState struct {
	id        string
	history   repo.History
	manifests []repo.Manifest
	snapshots int // listed, readable or not
	cat       catalog.Shard
	damaged   map[string]damage // by object key
	keys      map[string]storage.Info
}

// Run verifies the repository.
func Run(ctx context.Context, r *repo.Repository, o Options) (Report, error) {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.ReadMemory <= 0 {
		o.ReadMemory = DefaultReadMemory
	}
	var rep Report
	keys := map[string]storage.Info{}
	err := r.Store().List(ctx, "", func(i storage.Info) error {
		keys[i.Key] = i
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.checkUnknown(keys)
	shards, err := shardIDs(ctx, r)
	if err != nil {
		return rep, fmt.Errorf("verify: %w", err)
	}
	rep.Shards = len(shards)
	snapshots, timelines := 0, 0
	for _, id := range shards {
		st, err := rep.loadShard(ctx, r, id, keys)
		if err != nil {
			return rep, err
		}
		snapshots += st.snapshots
		timelines += len(st.history.Timelines)
		rep.checkTimelines(st)
		rep.checkOrphans(st, keys)
		if o.ReadData {
			if err := rep.readData(ctx, r, st, o); err != nil {
				return rep, err
			}
		}
		rep.impact(st)
	}
	if err := rep.checkClusters(ctx, r, keys); err != nil {
		return rep, err
	}
	rep.checkRestorable(snapshots, timelines)
	return rep, nil
}

// NothingRestorable is the Kind of the finding that the repository has no
// restore window at all.
const NothingRestorable = "nothing-restorable"

// checkRestorable makes a repository with no restore window a problem: a
// backup that cannot restore anything is not healthy, even if every object
// in it is sound (an empty repository, oplog without a snapshot).
func (rep *Report) checkRestorable(snapshots, timelines int) {
	if len(rep.Windows) > 0 {
		return
	}
	msg := "the repository holds no snapshot and no oplog: nothing is restorable yet; take a snapshot with `rewind snapshot`, or start `rewind agent`, which takes its first one (snapshot.every)"
	switch {
	case snapshots > 0:
		msg = "no snapshot can be restored (see the problems above, or the oplog of its own copy is missing): nothing is restorable; put the damaged objects back, or take a new snapshot with `rewind snapshot`"
	case timelines > 0:
		msg = "the repository holds oplog but no snapshot, and a restore starts from one: nothing is restorable yet; take a snapshot with `rewind snapshot`, or let the agent take its first one (snapshot.every)"
	}
	rep.add(Finding{Severity: Problem, Kind: NothingRestorable, Message: msg})
}

// shardIDs lists the repository's shards (repo.Shards) and those that
// hold only oplog segments, whose timeline records are missing: verify
// reports those.
func shardIDs(ctx context.Context, r *repo.Repository) ([]string, error) {
	ids, err := r.Shards(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, id := range ids {
		seen[id] = true
	}
	err = r.Store().List(ctx, "oplog/", func(i storage.Info) error {
		sh, _, _ := strings.Cut(strings.TrimPrefix(i.Key, "oplog/"), "/")
		if !seen[sh] {
			seen[sh] = true
			ids = append(ids, sh)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

var knownPrefixes = []string{"config", "oplog/", "oplog-index/", "timelines/", "gaps/", "snapshots/", "data/", "heartbeats/", "locks/", "topology/", "drills/", "clusters/", "balancer", "audit/"}

func (rep *Report) checkUnknown(keys map[string]storage.Info) {
	for k := range keys {
		known := false
		for _, p := range knownPrefixes {
			known = known || strings.HasPrefix(k, p)
		}
		if !known {
			rep.add(Finding{Severity: Problem, Kind: "unknown-key", Object: k,
				Message: "an object rewind does not know; another program writes into the repository"})
		}
	}
}

func (rep *Report) add(f Finding) { rep.Findings = append(rep.Findings, f) }

// loadShard reads a shard's history and manifests; an unreadable manifest
// is a finding, not an error.
func (rep *Report) loadShard(ctx context.Context, r *repo.Repository, id string, keys map[string]storage.Info) (*shardState, error) {
	st := &shardState{id: id, damaged: map[string]damage{}, keys: keys}
	h, err := r.History(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("verify: list history of shard %s: %w", id, err)
	}
	st.history = h
	if err := rep.checkMissingSegments(ctx, r, st); err != nil {
		return nil, err
	}
	snaps, err := r.ListSnapshots(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	st.snapshots = len(snaps)
	for _, s := range snaps {
		rep.Objects++
		rep.Bytes += keys[s.Key].Size
		m, err := r.ReadManifest(ctx, s.Shard, s.ID)
		if errors.Is(err, repo.ErrNeedIdentity) || errors.Is(err, repo.ErrWrongKey) {
			return nil, fmt.Errorf("verify: %w", err) // the error says what to give
		}
		if err != nil {
			rep.add(Finding{Severity: Problem, Kind: kindOf(err), Object: s.Key,
				Message: fmt.Sprintf("manifest of snapshot %s cannot be read: %v", s.ID, err)})
			st.damaged[s.Key] = damage{snapshot: s.ID}
			continue
		}
		st.manifests = append(st.manifests, m)
		rep.checkChunks(st, m, keys)
	}
	st.cat = catalog.Derive(id, h, st.manifests)
	for _, w := range st.cat.Windows {
		rep.Windows = append(rep.Windows, Range{Shard: id, Snapshot: w.Snapshot, Timeline: w.Timeline, From: w.From, To: w.To})
	}
	return st, nil
}

// checkChunks checks that every chunk a manifest names is stored.
func (rep *Report) checkChunks(st *shardState, m repo.Manifest, keys map[string]storage.Info) {
	for _, c := range m.Collections {
		for _, ch := range c.Chunks {
			info, ok := keys[ch.Key]
			rep.Objects++
			rep.Bytes += info.Size
			if !ok {
				rep.add(Finding{Severity: Problem, Kind: "missing", Object: ch.Key,
					Message: fmt.Sprintf("snapshot %s names chunk %s of %s.%s, which is not in the repository", m.ID, ch.Key, c.DB, c.Name)})
				st.damaged[ch.Key] = damage{snapshot: m.ID}
			}
		}
	}
}

func kindOf(err error) string {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "missing"
	case errors.Is(err, repo.ErrCorrupt):
		return "corrupt"
	}
	return "unreadable"
}

// isExtract reports whether a timeline is a block prune copied out of
// another (retention names them PARENT.xxxxxxxx, 8 hex digits): it overlaps
// its parent's old range by design and follows no gap. (A listing names
// the parts of a timeline split by a missing segment PARENT.2, PARENT.3.)
func isExtract(id string) bool { return retention.IsExtract(id) }

// checkTimelines checks each timeline's record and order, and that a gap is
// recorded between consecutive timelines.
func (rep *Report) checkTimelines(st *shardState) {
	var main []repo.Timeline
	for _, tl := range st.history.Timelines {
		for _, s := range tl.Segments {
			rep.Objects++
			rep.Bytes += s.Size
		}
		if tl.Info == nil {
			rep.add(Finding{Severity: Problem, Kind: "no-timeline-record", Object: "timelines/" + st.id + "/" + tl.ID,
				Message: fmt.Sprintf("timeline %s has segments but no record (source flavor); restores fall back to the snapshot's flavor", tl.ID)})
		}
		for i := 1; i < len(tl.Segments); i++ {
			a, b := tl.Segments[i-1], tl.Segments[i]
			if !b.First.After(a.Last) {
				rep.add(Finding{Severity: Note, Kind: "overlap", Object: b.Key,
					Message: fmt.Sprintf("segment overlaps the one before it (%s..%s); allowed: readers skip repeated entries", b.First, a.Last)})
			}
		}
		if !isExtract(tl.ID) {
			main = append(main, tl)
		}
	}
	for i := 1; i < len(main); i++ {
		a, b := main[i-1], main[i]
		if !b.First.After(a.Last) {
			rep.add(Finding{Severity: Problem, Kind: "overlap", Object: "timelines/" + st.id + "/" + b.ID,
				Message: fmt.Sprintf("timelines %s (to %s) and %s (from %s) overlap: two captures wrote to one repository", a.ID, a.Last, b.ID, b.First)})
			continue
		}
		if !gapBetween(st.history.Gaps, a, b) {
			rep.add(Finding{Severity: Problem, Kind: "no-gap-record", Object: "timelines/" + st.id + "/" + b.ID,
				Message: fmt.Sprintf("no gap is recorded between timeline %s (ends %s) and timeline %s (starts %s)", a.ID, a.Last, b.ID, b.First)})
		}
	}
}

// checkMissingSegments reports the holes the listing found inside a
// timeline (a segment's key names an entry before it that no listed segment
// ends with): gaps in the history that are not stored gap objects.
func (rep *Report) checkMissingSegments(ctx context.Context, r *repo.Repository, st *shardState) error {
	stored, err := r.ListGaps(ctx, st.id)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	recorded := map[[2]optime.Timestamp]bool{}
	for _, g := range stored {
		recorded[[2]optime.Timestamp{g.Before, g.After}] = true
	}
	for _, g := range st.history.Gaps {
		if recorded[[2]optime.Timestamp{g.Before, g.After}] {
			continue
		}
		rep.add(Finding{Severity: Problem, Kind: "missing", Object: fmt.Sprintf("oplog/%s/ between %s and %s", st.id, g.Before, g.After),
			Message: fmt.Sprintf("an oplog segment is missing: %s; restore points after %s (%s) cannot be reached from snapshots before it",
				g.Reason, g.Before, g.Before.Time().Format(time.RFC3339)),
			Breaks: []Range{{Shard: st.id, From: g.Before, To: g.After}}})
	}
	return nil
}

func gapBetween(gaps []repo.Gap, a, b repo.Timeline) bool {
	for _, g := range gaps {
		if !g.Before.Before(a.Last) && !g.After.After(b.First) {
			return true
		}
	}
	return false
}

// checkOrphans notes chunks of snapshots without a manifest and segments
// hidden inside bigger ones.
func (rep *Report) checkOrphans(st *shardState, keys map[string]storage.Info) {
	complete := map[string]bool{}
	for _, m := range st.manifests {
		complete[m.ID] = true
	}
	for k := range st.damaged {
		if strings.HasPrefix(k, "snapshots/") {
			complete[strings.TrimPrefix(k, "snapshots/"+st.id+"/")] = true
		}
	}
	visible := map[string]bool{}
	for _, tl := range st.history.Timelines {
		for _, s := range tl.Segments {
			visible[s.Key] = true
		}
	}
	orphans := map[string]int{}
	var sortedKeys []string
	for k := range keys {
		sortedKeys = append(sortedKeys, k)
	}
	sort.Strings(sortedKeys)
	for _, k := range sortedKeys {
		if rest, ok := strings.CutPrefix(k, "data/"+st.id+"/"); ok {
			snap, _, _ := strings.Cut(rest, "/")
			if !complete[snap] {
				orphans[snap]++
			}
		}
		if strings.HasPrefix(k, "oplog/"+st.id+"/") && !visible[k] {
			rep.add(Finding{Severity: Note, Kind: "orphan", Object: k,
				Message: "segment contained in a bigger one of its timeline (interrupted compaction); `rewind prune` removes it"})
		}
		if seg, ok := repo.SegmentKeyOfIndex(k); ok && strings.HasPrefix(seg, "oplog/"+st.id+"/") && !visible[seg] {
			rep.add(Finding{Severity: Note, Kind: "orphan", Object: k,
				Message: "index of a segment that is gone or hidden in a bigger one (interrupted delete or compaction); `rewind prune` removes it"})
		}
	}
	rep.checkIndexes(st, keys)
	var snaps []string
	for s := range orphans {
		snaps = append(snaps, s)
	}
	sort.Strings(snaps)
	for _, s := range snaps {
		rep.add(Finding{Severity: Note, Kind: "orphan", Object: "data/" + st.id + "/" + s + "/",
			Message: fmt.Sprintf("%d chunks of snapshot %s, which has no manifest (a running or interrupted snapshot, or an interrupted delete); `rewind prune` removes them once older than its grace period", orphans[s], s)})
	}
}

// NoIndex is the Kind of the note that segments have no index.
const NoIndex = "no-index"

// checkIndexes notes the visible segments that have no index: written
// before indexes existed, or by a writer stopped between a segment and its
// index. Nothing is lost (a summary reads such a segment whole), so it is a
// note, counted once per shard.
func (rep *Report) checkIndexes(st *shardState, keys map[string]storage.Info) {
	missing, first := 0, ""
	for _, tl := range st.history.Timelines {
		for _, s := range tl.Segments {
			info, ok := keys[repo.IndexKey(s.Key)]
			if ok {
				rep.Objects++
				rep.Bytes += info.Size
				continue
			}
			if missing++; first == "" {
				first = s.Key
			}
		}
	}
	if missing > 0 {
		rep.add(Finding{Severity: Note, Kind: NoIndex, Object: repo.IndexKey(first),
			Message: fmt.Sprintf("%d segments of shard %s have no index (written by an older rewind, or a writer stopped between a segment and its index; this one is the first): `rewind oplog --summary` reads them whole, nothing is lost", missing, st.id)})
	}
}
