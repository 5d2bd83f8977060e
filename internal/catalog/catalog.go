// Package catalog derives what can be restored from a listing of the
// repository: per shard, the timelines (unbroken runs of oplog segments),
// the gaps between them, the complete snapshots and the restore windows
// they open. Derive is a pure function over listed data; Load is the thin
// part that lists and reads manifests.
package catalog

import (
	"sort"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Snapshot is a complete snapshot with the figures a listing shows.
type Snapshot struct {
	Shard       string
	ID          string
	Start       optime.Timestamp // oplog ts before the copy began
	End         optime.Timestamp // consistent point
	Started     time.Time
	Finished    time.Time
	Collections int
	Documents   int64
	Bytes       int64 // plaintext bytes of the documents
	Chunks      int
	Manifest    repo.Manifest
}

// Window is a restore window: every oplog timestamp in [From, To] is a
// restore point, reached by loading Snapshot and replaying Timeline's
// segments from the snapshot's start. Timeline is "" for a snapshot that
// needs no oplog (its start and end are the same point and no timeline
// covers it): then From == To.
type Window struct {
	Shard    string
	Snapshot string
	Timeline string
	From, To optime.Timestamp
}

// Contains reports whether ts is a restore point of w.
func (w Window) Contains(ts optime.Timestamp) bool {
	return !ts.Before(w.From) && !ts.After(w.To)
}

// Shard is everything restorable from one shard.
type Shard struct {
	ID        string
	Timelines []repo.Timeline
	Gaps      []repo.Gap
	Snapshots []Snapshot // in end order
	Windows   []Window   // in (From, To) order
	// Covered is the shard's covered-through time from its heartbeat
	// (repo.Heartbeat.Covered): every entry at or before it is stored.
	// Zero when no heartbeat was read.
	Covered optime.Timestamp
}

// Catalog is the whole repository.
type Catalog struct {
	Shards []Shard
	// Cluster names the shards of a sharded cluster's repository (the
	// config's source.cluster, sorted); nil for a replica set's. The
	// config server's shard ("config") is not among them unless it is an
	// 8.0 config shard, which holds user data.
	Cluster []string
}

// Snapshot returns the snapshot with the given id, if listed.
func (s Shard) Snapshot(id string) (Snapshot, bool) {
	for _, sn := range s.Snapshots {
		if sn.ID == id {
			return sn, true
		}
	}
	return Snapshot{}, false
}

// Timeline returns the timeline with the given id, if listed.
func (s Shard) Timeline(id string) (repo.Timeline, bool) {
	for _, tl := range s.Timelines {
		if tl.ID == id {
			return tl, true
		}
	}
	return repo.Timeline{}, false
}

// NewSnapshot summarizes a manifest.
func NewSnapshot(m repo.Manifest) Snapshot {
	s := Snapshot{Shard: m.Shard, ID: m.ID, Start: m.Start, End: m.End, Started: m.Started,
		Finished: m.Finished, Collections: len(m.Collections), Manifest: m}
	for _, c := range m.Collections {
		s.Documents += c.Count
		s.Bytes += c.Bytes
		s.Chunks += len(c.Chunks)
	}
	return s
}

// Derive computes a shard's restore windows from its history and its
// snapshots' manifests. A snapshot opens a window on every timeline that
// holds its whole copy range [Start, End]: the window runs from End to the
// timeline's last entry. A snapshot whose Start equals its End needs no
// oplog, so it is a one-point window even with no timeline.
func Derive(shard string, h repo.History, manifests []repo.Manifest) Shard {
	out := Shard{ID: shard, Timelines: h.Timelines, Gaps: h.Gaps}
	for _, m := range manifests {
		out.Snapshots = append(out.Snapshots, NewSnapshot(m))
	}
	sort.SliceStable(out.Snapshots, func(a, b int) bool {
		return out.Snapshots[a].End.Before(out.Snapshots[b].End)
	})
	for _, s := range out.Snapshots {
		covered := false
		for _, tl := range h.Timelines {
			if tl.Covers(s.Start, s.End, s.Manifest.FromEmptyOplog) {
				covered = true
				out.Windows = append(out.Windows, Window{Shard: shard, Snapshot: s.ID, Timeline: tl.ID, From: s.End, To: tl.Last})
			}
		}
		if !covered && s.Start == s.End {
			out.Windows = append(out.Windows, Window{Shard: shard, Snapshot: s.ID, From: s.End, To: s.End})
		}
	}
	sort.SliceStable(out.Windows, func(a, b int) bool {
		wa, wb := out.Windows[a], out.Windows[b]
		if c := optime.Compare(wa.From, wb.From); c != 0 {
			return c < 0
		}
		return wa.To.Before(wb.To)
	})
	return out
}

// Nearest returns the windows closest to ts: the last one ending before it
// (the newest snapshot's, when several end together) and the first one
// starting after it (either may be missing). It is for error messages.
func (s Shard) Nearest(ts optime.Timestamp) (before, after *Window) {
	for i := range s.Windows {
		w := &s.Windows[i]
		if w.To.Before(ts) && (before == nil || before.To.Before(w.To) || before.To == w.To && before.From.Before(w.From)) {
			before = w
		}
		if w.From.After(ts) && (after == nil || w.From.Before(after.From)) {
			after = w
		}
	}
	return before, after
}

// Span returns the union of the shard's windows, merged where they touch or
// overlap: what a user sees as "restorable from ... to ...".
func (s Shard) Span() []Window {
	var out []Window
	for _, w := range s.Windows {
		if n := len(out); n > 0 && !w.From.After(out[n-1].To) {
			if w.To.After(out[n-1].To) {
				out[n-1].To = w.To
			}
			continue
		}
		out = append(out, Window{Shard: w.Shard, From: w.From, To: w.To})
	}
	return out
}
