package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage"
)

// TimelineInfo is what the agent records when it starts a timeline: the
// source's flavor decides how entries are replayed, so the replayer reads it
// from here, never from a live server.
type TimelineInfo struct {
	Shard   string    `bson:"shard"`
	ID      string    `bson:"id"`
	Flavor  string    `bson:"flavor"`            // "mongodb" or "ferretdb"
	Version string    `bson:"version,omitempty"` // server version string
	Hosts   []string  `bson:"hosts,omitempty"`
	Started time.Time `bson:"started"`
}

// Gap records oplog entries lost between two timelines: the source's oplog
// rolled over while capture was down. Entries after Before and before After
// are missing.
type Gap struct {
	Shard    string           `bson:"shard"`
	Before   optime.Timestamp `bson:"before"` // last ts captured before the gap
	After    optime.Timestamp `bson:"after"`  // first ts available after the gap
	Detected time.Time        `bson:"detected"`
	Reason   string           `bson:"reason,omitempty"`
}

// Timeline is an unbroken run of segments, as derived from a listing.
type Timeline struct {
	// ID names the timeline. A timeline split by a missing segment is
	// listed as several parts: the first keeps the stored id, the later ones
	// are "ID.2", "ID.3", ... (Stored is the id in the keys).
	ID       string
	Stored   string
	Info     *TimelineInfo // nil if the timeline object is missing
	First    optime.Timestamp
	Last     optime.Timestamp
	Segments []SegmentInfo
}

// TimelineID names a timeline after the point from which it holds every
// entry: its first entry, or optime.Zero for a timeline whose capture began
// while the source's oplog was empty (it then holds every entry the source
// ever logged). The name is a pure function of where capture began, so the
// spool, the segment keys and a restarted agent all agree on it.
func TimelineID(from optime.Timestamp) string { return "tl-" + from.Key() }

// FromOplogStart reports whether the timeline holds every entry the source
// logged from its oplog's first one: its capture began on an empty oplog
// (its id is TimelineID(optime.Zero)) and its first segment is still the
// timeline's first (a segment whose Prev is zero). Prune's copies get new
// ids, and a part listed after a missing segment has Prev set, so neither
// claims it.
func (t Timeline) FromOplogStart() bool {
	return t.ID == TimelineID(optime.Zero) && len(t.Segments) > 0 && t.Segments[0].Prev.IsZero()
}

// Covers reports whether the timeline holds every entry a snapshot copied
// across [start, end] needs replayed: its last entry is at or after end,
// and it holds everything after start (its first entry is at or before
// start, or, for a snapshot taken while the oplog was empty, it holds the
// oplog from its first entry). It is the one rule for restore windows,
// retention and snapshots.
func (t Timeline) Covers(start, end optime.Timestamp, fromEmptyOplog bool) bool {
	if len(t.Segments) == 0 || t.Last.Before(end) {
		return false
	}
	return !t.First.After(start) || fromEmptyOplog && t.FromOplogStart()
}

// History is a shard's timelines and gaps, both in time order.
type History struct {
	Timelines []Timeline
	Gaps      []Gap
}

// WriteTimeline records a new timeline. Write it before the timeline's first
// segment.
func (r *Repository) WriteTimeline(ctx context.Context, info TimelineInfo) error {
	if err := checkShard(info.Shard); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	if err := checkTimeline(info.ID); err != nil {
		return fmt.Errorf("write timeline: %w", err)
	}
	info.Started = info.Started.UTC()
	return r.putBSON(ctx, timelineKey(info.Shard, info.ID), KindTimeline, info)
}

// ReadTimeline loads a timeline's record.
func (r *Repository) ReadTimeline(ctx context.Context, shard, id string) (TimelineInfo, error) {
	var info TimelineInfo
	if err := checkTimeline(id); err != nil {
		return info, fmt.Errorf("read timeline: %w", err)
	}
	key := timelineKey(shard, id)
	if err := r.getBSON(ctx, key, KindTimeline, &info); err != nil {
		return info, err
	}
	if info.Shard != shard || info.ID != id {
		return info, fmt.Errorf("decode object %s: %w: holds timeline %s/%s", key, ErrCorrupt, info.Shard, info.ID)
	}
	return info, nil
}

// RecordGap stores a gap. Write it before the first segment of the timeline
// that follows the gap.
func (r *Repository) RecordGap(ctx context.Context, g Gap) error {
	if err := checkShard(g.Shard); err != nil {
		return fmt.Errorf("record gap: %w", err)
	}
	if !g.Before.Before(g.After) {
		return fmt.Errorf("record gap: before %s is not before after %s: %w", g.Before, g.After, ErrInvalid)
	}
	g.Detected = g.Detected.UTC()
	return r.putBSON(ctx, gapKey(g.Shard, g.Before, g.After), KindGap, g)
}

// ListGaps returns a shard's gaps in time order.
func (r *Repository) ListGaps(ctx context.Context, shard string) ([]Gap, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("list gaps: %w", err)
	}
	infos, err := r.listKeys(ctx, prefixGaps+shard+"/")
	if err != nil {
		return nil, err
	}
	gaps := make([]Gap, 0, len(infos))
	for _, i := range infos {
		var g Gap
		if err := r.getBSON(ctx, i.Key, KindGap, &g); err != nil {
			return nil, err
		}
		if i.Key != gapKey(shard, g.Before, g.After) || g.Shard != shard {
			return nil, fmt.Errorf("decode object %s: %w: holds gap %s %s..%s", i.Key, ErrCorrupt, g.Shard, g.Before, g.After)
		}
		gaps = append(gaps, g)
	}
	return gaps, nil
}

// History lists a shard's timelines (derived from its segments, with their
// recorded info) and gaps.
func (r *Repository) History(ctx context.Context, shard string) (History, error) {
	segs, err := r.ListSegments(ctx, shard)
	if err != nil {
		return History{}, err
	}
	gaps, err := r.ListGaps(ctx, shard)
	if err != nil {
		return History{}, err
	}
	var h History
	h.Gaps = gaps
	index := map[string]int{} // timeline id -> its current (last) part
	parts := map[string]int{}
	for _, s := range segs {
		i, ok := index[s.Timeline]
		if ok && broken(h.Timelines[i], s) {
			// A segment of this timeline is missing: the entries between
			// are lost, exactly as in a gap. The rest is a new part.
			prev := h.Timelines[i]
			h.Gaps = append(h.Gaps, Gap{Shard: shard, Before: prev.Last, After: s.First,
				Reason: fmt.Sprintf("missing oplog segment: the segment after %s names %s as the entry before it", prev.Last, s.Prev)})
			parts[s.Timeline]++
			ok = false
		}
		if !ok {
			i = len(h.Timelines)
			index[s.Timeline] = i
			id := s.Timeline
			if n := parts[s.Timeline]; n > 0 {
				id = fmt.Sprintf("%s.%d", s.Timeline, n+1)
			}
			h.Timelines = append(h.Timelines, Timeline{ID: id, First: s.First, Stored: s.Timeline})
		}
		t := &h.Timelines[i]
		t.Segments = append(t.Segments, s)
		t.Last = s.Last
	}
	sort.SliceStable(h.Gaps, func(a, b int) bool { return h.Gaps[a].Before.Before(h.Gaps[b].Before) })
	for i := range h.Timelines {
		t := &h.Timelines[i]
		info, err := r.ReadTimeline(ctx, shard, t.Stored)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return History{}, err
		}
		if err == nil {
			t.Info = &info
		}
	}
	sort.SliceStable(h.Timelines, func(a, b int) bool {
		return h.Timelines[a].First.Before(h.Timelines[b].First)
	})
	return h, nil
}

// broken reports whether s does not follow the last segment of t: its key
// names an entry before it (Prev) that is not t's last. A zero Prev is a
// timeline's first segment (or an unlinked one) and is not checked.
func broken(t Timeline, s SegmentInfo) bool {
	return !s.Prev.IsZero() && s.Prev != t.Last
}

// Shards lists, sorted, the ids of every shard that has something stored
// under it: a timeline record, a snapshot or an agent's heartbeat. A shard
// with snapshots and no oplog yet (an agent's base snapshot of a deployment
// whose oplog is still empty, or `rewind snapshot` without an agent) is a
// shard, as is one whose agent runs and has captured nothing yet. Every
// timeline is recorded before its first segment, so the (long) oplog
// listing is not read here; verify looks for segments without a record.
func (r *Repository) Shards(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, prefix := range []string{prefixTimelines, prefixSnapshots, prefixHeartbeats} {
		infos, err := r.listKeys(ctx, prefix)
		if err != nil {
			return nil, err
		}
		for _, i := range infos {
			shard, _, _ := strings.Cut(strings.TrimPrefix(i.Key, prefix), "/")
			if !seen[shard] {
				seen[shard] = true
				out = append(out, shard)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}
