package catalog

import "github.com/rewind-backup/rewind/internal/optime"

// Reach returns the shard's windows as a cluster restore sees them: the
// windows on its newest timeline run on to its covered-through time when
// that is later than the timeline's last entry. An idle shard logs
// nothing, yet its oplog is known complete through Covered, so every point
// up to there restores it exactly (its state does not change after its
// last entry).
func (s Shard) Reach() []Window {
	var newest string
	var last optime.Timestamp
	for _, tl := range s.Timelines {
		if newest == "" || tl.Last.After(last) {
			newest, last = tl.ID, tl.Last
		}
	}
	out := make([]Window, len(s.Windows))
	for i, w := range s.Windows {
		if w.Timeline != "" && w.Timeline == newest && s.Covered.After(w.To) {
			w.To = s.Covered
		}
		out[i] = w
	}
	return out
}

// Shard returns the shard with the given id, if the catalog lists it.
func (c Catalog) Shard(id string) (Shard, bool) {
	for _, sh := range c.Shards {
		if sh.ID == id {
			return sh, true
		}
	}
	return Shard{}, false
}

// ClusterWindows returns a cluster's restore windows: the points every one
// of its shards (Cluster) can be restored to, the intersection of their
// windows as Reach extends them, so none reaches past the least
// covered-through time. The windows carry no snapshot or timeline (each
// shard has its own); Shard is "". Nil for a replica set's repository, or
// while a shard has no window.
func (c Catalog) ClusterWindows() []Window {
	var out []Window
	for i, id := range c.Cluster {
		sh, _ := c.Shard(id)
		span := Shard{Windows: sh.Reach()}.Span()
		if i == 0 {
			out = span
			continue
		}
		out = intersect(out, span)
	}
	for i := range out {
		out[i].Shard = ""
	}
	return out
}

// intersect returns the points in both lists of disjoint, ordered windows.
func intersect(a, b []Window) []Window {
	var out []Window
	for _, x := range a {
		for _, y := range b {
			from, to := x.From, x.To
			if y.From.After(from) {
				from = y.From
			}
			if y.To.Before(to) {
				to = y.To
			}
			if !from.After(to) {
				out = append(out, Window{From: from, To: to})
			}
		}
	}
	return out
}
