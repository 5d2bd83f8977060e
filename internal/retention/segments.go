package retention

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// need is a range of a timeline that must stay restorable: segments
// overlapping [from, to] (to == nil: to the end of the timeline).
type need struct {
	from   optime.Timestamp
	to     *optime.Timestamp
	reason string
}

// block is a run of segment indices [lo, hi] that needs keep together.
type block struct {
	lo, hi  int
	reasons []string
}

// timelineNeeds lists what must stay of tl: the restore window from its
// anchor, the grace period, and the copy range of every kept snapshot.
func timelineNeeds(p Policy, tl repo.Timeline, d Decision, now time.Time) []need {
	var out []need
	for _, pr := range d.Promises {
		if pr.Timeline == tl.ID && pr.Rule == "restore window" {
			s := findSnapshot(d, pr.Snapshot)
			out = append(out, need{from: s.Start, reason: "restore window, replayed from snapshot " + s.ID})
		}
	}
	if len(out) == 0 && reachesWindowDecided(tl, d) {
		from := d.Cutoff
		if g := tsAt(now.Add(-p.Grace)); g.Before(from) {
			from = g
		}
		out = append(out, need{from: from, reason: "restore window (no snapshot on this timeline yet)"})
	}
	out = append(out, need{from: tsAt(now.Add(-p.Grace)), reason: fmt.Sprintf("newer than the %s grace period (a running snapshot may need it)", p.Grace)})
	for _, s := range d.Snapshots {
		if s.Keep && covers(tl, s.Snapshot) {
			end := s.End
			if s.Through.After(end) {
				end = s.Through // a cluster part is replayed through the cluster's T
			}
			out = append(out, need{from: s.Start, to: &end, reason: "copy range of kept snapshot " + s.ID})
		}
	}
	return out
}

// reachesWindowDecided reports whether tl ends inside the window.
func reachesWindowDecided(tl repo.Timeline, d Decision) bool { return tl.Last.After(d.Cutoff) }

func findSnapshot(d Decision, id string) Snapshot {
	for _, s := range d.Snapshots {
		if s.ID == id {
			return s.Snapshot
		}
	}
	return Snapshot{}
}

// blocks maps needs to segment index ranges and merges those that overlap
// or touch, in index order.
func blocks(segs []repo.SegmentInfo, needs []need) []block {
	var bs []block
	for _, n := range needs {
		lo := sort.Search(len(segs), func(i int) bool { return !segs[i].Last.Before(n.from) })
		hi := len(segs) - 1
		if n.to != nil {
			hi = sort.Search(len(segs), func(i int) bool { return segs[i].First.After(*n.to) }) - 1
		}
		if lo <= hi {
			bs = append(bs, block{lo: lo, hi: hi, reasons: []string{n.reason}})
		}
	}
	sort.Slice(bs, func(a, b int) bool { return bs[a].lo < bs[b].lo })
	var out []block
	for _, b := range bs {
		if n := len(out); n > 0 && b.lo <= out[n-1].hi+1 {
			if b.hi > out[n-1].hi {
				out[n-1].hi = b.hi
			}
			out[n-1].reasons = append(out[n-1].reasons, b.reasons...)
			continue
		}
		out = append(out, b)
	}
	return out
}

// decideSegments keeps the newest block of needed segments in place and
// copies every older block to a timeline of its own, so that deleting the
// rest never leaves a hole inside a timeline (a listing could not tell a
// hole from a contiguous run).
func decideSegments(p Policy, tl repo.Timeline, shard string, d Decision, now time.Time) ([]SegmentRun, []Extract) {
	segs := tl.Segments
	bs := blocks(segs, timelineNeeds(p, tl, d, now))
	why := make([]string, len(segs))
	keep := make([]bool, len(segs))
	var extracts []Extract
	for i, b := range bs {
		reason := b.reasons[0]
		if i == len(bs)-1 {
			for j := b.lo; j <= b.hi; j++ {
				keep[j], why[j] = true, reason
			}
			continue
		}
		// The stored id (a listing may show a timeline split by a missing
		// segment as "ID.2"; keys and records use the stored one).
		stored := segs[b.lo].Timeline
		ex := Extract{Shard: shard, From: stored, ID: extractID(stored, segs[b.lo]),
			Segments: append([]repo.SegmentInfo(nil), segs[b.lo:b.hi+1]...), Reason: reason}
		extracts = append(extracts, ex)
		for j := b.lo; j <= b.hi; j++ {
			why[j] = fmt.Sprintf("copied to timeline %s (%s), then removed here so this timeline has no hole", ex.ID, reason)
		}
	}
	var runs []SegmentRun
	for j, s := range segs {
		if why[j] == "" {
			why[j] = "needed by no kept snapshot and older than the restore window"
		}
		if n := len(runs); n > 0 && runs[n-1].Keep == keep[j] && runs[n-1].Reason == why[j] {
			r := &runs[n-1]
			r.Segments, r.Last, r.Bytes = append(r.Segments, s), s.Last, r.Bytes+s.Size
			continue
		}
		runs = append(runs, SegmentRun{Shard: shard, Timeline: tl.ID, First: s.First, Last: s.Last,
			Segments: []repo.SegmentInfo{s}, Bytes: s.Size, Keep: keep[j], Reason: why[j]})
	}
	return runs, extracts
}

// IsExtract reports whether a timeline id names a block prune copied out of
// another timeline: PARENT.xxxxxxxx (8 hex digits). (A listing names the
// parts of a timeline split by a missing segment PARENT.2, PARENT.3, ...)
func IsExtract(id string) bool {
	i := strings.LastIndex(id, ".")
	if i < 0 || len(id)-i-1 != 8 {
		return false
	}
	_, err := hex.DecodeString(id[i+1:])
	return err == nil
}

// extractID names the copy of a block deterministically, so an interrupted
// prune that runs again writes the same objects.
func extractID(parent string, first repo.SegmentInfo) string {
	sum := sha256.Sum256([]byte(parent + "/" + first.Key))
	suffix := hex.EncodeToString(sum[:4])
	if len(parent)+1+len(suffix) > 64 {
		return hex.EncodeToString(sum[:8])
	}
	return parent + "." + suffix
}
