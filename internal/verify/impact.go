package verify

import (
	"sort"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// impact fills in, for every damaged object of the shard, the restore
// points it breaks, and adds the shard's remaining restorable spans.
func (rep *Report) impact(st *shardState) {
	cut := map[int]optime.Timestamp{} // window index -> last intact point
	dead := map[int]bool{}
	for i := range rep.Findings {
		f := &rep.Findings[i]
		d, ok := st.damaged[f.Object]
		if !ok || f.Severity != Problem {
			continue
		}
		f.Breaks = breaks(st, d, cut, dead)
	}
	var left []Range
	for i, w := range st.cat.Windows {
		if dead[i] {
			continue
		}
		r := Range{Shard: st.id, Snapshot: w.Snapshot, Timeline: w.Timeline, From: w.From, To: w.To}
		if c, ok := cut[i]; ok {
			r.To = c
		}
		left = append(left, r)
	}
	rep.Remaining = append(rep.Remaining, merge(left)...)
}

// breaks lists the restore points one damaged object breaks, and records
// per window whether it is wholly broken or up to which point it survives.
func breaks(st *shardState, d damage, cut map[int]optime.Timestamp, dead map[int]bool) []Range {
	var out []Range
	for i, w := range st.cat.Windows {
		whole := Range{Shard: st.id, Snapshot: w.Snapshot, Timeline: w.Timeline, From: w.From, To: w.To}
		if d.segment == nil {
			if w.Snapshot == d.snapshot {
				out, dead[i] = append(out, whole), true
			}
			continue
		}
		seg := *d.segment
		snap, _ := st.cat.Snapshot(w.Snapshot)
		switch {
		case w.Timeline != seg.Timeline || seg.Last.Before(snap.Start) || seg.First.After(w.To):
		case !seg.First.After(snap.End): // inside the snapshot's copy range
			out, dead[i] = append(out, whole), true
		default:
			out = append(out, Range{Shard: st.id, Snapshot: w.Snapshot, Timeline: w.Timeline, From: seg.First, To: w.To})
			last := lastBefore(st, seg)
			if c, ok := cut[i]; !ok || last.Before(c) {
				cut[i] = last
			}
			if cut[i].Before(w.From) {
				dead[i] = true
			}
		}
	}
	if len(out) == 0 && d.segment == nil {
		out = append(out, Range{Shard: st.id, Snapshot: d.snapshot})
	}
	return out
}

// lastBefore is the last entry of the segment before seg on its timeline:
// the last restore point a replay reaches without seg.
func lastBefore(st *shardState, seg repo.SegmentInfo) optime.Timestamp {
	var last optime.Timestamp
	for _, tl := range st.history.Timelines {
		for _, s := range tl.Segments {
			if s.Timeline == seg.Timeline && s.Last.Before(seg.First) && s.Last.After(last) {
				last = s.Last
			}
		}
	}
	return last
}

// merge joins ranges that touch or overlap, as `rewind list` spans do.
func merge(rs []Range) []Range {
	sort.Slice(rs, func(a, b int) bool { return rs[a].From.Before(rs[b].From) })
	var out []Range
	for _, r := range rs {
		if n := len(out); n > 0 && !r.From.After(out[n-1].To) {
			if r.To.After(out[n-1].To) {
				out[n-1].To = r.To
			}
			continue
		}
		out = append(out, Range{Shard: r.Shard, From: r.From, To: r.To})
	}
	return out
}
