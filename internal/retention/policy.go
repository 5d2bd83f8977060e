// Package retention decides what a repository keeps, in the terms of Atlas
// and Ops Manager: a restore window (every second of the last N days is a
// restore point) plus hourly, daily, weekly and monthly snapshots kept
// beyond it. Decide is a pure function over a listing: it says which
// snapshots and segments stay and which rule keeps or drops each one, and
// which restore points the kept objects promise. Prune (prune.go) carries a
// decision out on a repository under its exclusive lock.
package retention

import (
	"fmt"
	"sort"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Policy is what the repository promises to keep.
type Policy struct {
	// RestoreWindow: every restore point newer than now-RestoreWindow stays
	// restorable.
	RestoreWindow time.Duration
	// Tiers: the newest snapshot of each of the last N hours, days, ISO
	// weeks and months (UTC, by the snapshot's consistent point) among the
	// snapshots older than the window, kept restorable to their end.
	Hourly, Daily, Weekly, Monthly int
	// Grace protects recent objects from being judged useless: segments
	// newer than now-Grace (a running snapshot may need them) and chunks
	// without a manifest newer than now-Grace (a running snapshot is
	// writing them). Default DefaultGrace.
	Grace time.Duration
}

// DefaultGrace is the default Policy.Grace.
const DefaultGrace = 24 * time.Hour

// Snapshot is the part of a manifest retention needs.
type Snapshot struct {
	Shard      string
	ID         string
	Start, End optime.Timestamp
	// FromEmptyOplog is the manifest's: the copy began on an empty oplog.
	FromEmptyOplog bool
	// Through is the cluster's T when the snapshot is a part of a cluster
	// snapshot: its oplog is kept through T, not only through End.
	Through optime.Timestamp
	// Pinned, when set, keeps the snapshot whatever the rules say, and
	// says why (a part of a kept cluster snapshot).
	Pinned string
}

// Shard is one shard's listing: its visible timelines and its snapshots.
type Shard struct {
	ID        string
	Timelines []repo.Timeline
	Snapshots []Snapshot
}

// SnapshotDecision says whether a snapshot stays and why.
type SnapshotDecision struct {
	Snapshot
	Keep    bool
	Reasons []string // every rule that keeps it, or why it goes
}

// Promise is a range of restore points the kept objects guarantee: every
// point in [From, To] is restorable from Snapshot on Timeline.
type Promise struct {
	Shard, Snapshot, Timeline string
	From, To                  optime.Timestamp
	Rule                      string
}

// Extract is a block of segments that kept snapshots need but that is cut
// off from the rest of its timeline: it is copied to a timeline of its own
// (ID) before the originals go, so no timeline ever has a hole in it.
type Extract struct {
	Shard    string
	From     string // parent timeline
	ID       string // new timeline id: parent + "." + 8 hex digits
	Segments []repo.SegmentInfo
	Reason   string
}

// SegmentRun is a run of consecutive segments of one timeline with the same
// fate.
type SegmentRun struct {
	Shard, Timeline string
	First, Last     optime.Timestamp
	Segments        []repo.SegmentInfo
	Bytes           int64
	Keep            bool
	Reason          string
}

// Decision is the whole plan for one shard.
type Decision struct {
	Shard     string
	Cutoff    optime.Timestamp // now - restore window
	Snapshots []SnapshotDecision
	Runs      []SegmentRun
	Extracts  []Extract
	Promises  []Promise
}

// DropSnapshots lists the snapshots to delete.
func (d Decision) DropSnapshots() []Snapshot {
	var out []Snapshot
	for _, s := range d.Snapshots {
		if !s.Keep {
			out = append(out, s.Snapshot)
		}
	}
	return out
}

// DropSegments lists the segments to delete, oldest first per timeline.
func (d Decision) DropSegments() []repo.SegmentInfo {
	var out []repo.SegmentInfo
	for _, r := range d.Runs {
		if !r.Keep {
			out = append(out, r.Segments...)
		}
	}
	return out
}

// tsAt is the first restore point of a wall-clock second.
func tsAt(t time.Time) optime.Timestamp {
	if t.Unix() <= 0 {
		return optime.Zero
	}
	return optime.Timestamp{T: uint32(t.Unix()), I: 0}
}

// Decide applies the policy to one shard at time now.
func Decide(p Policy, sh Shard, now time.Time) Decision {
	if p.Grace <= 0 {
		p.Grace = DefaultGrace
	}
	d := Decision{Shard: sh.ID, Cutoff: tsAt(now.Add(-p.RestoreWindow))}
	snaps := append([]Snapshot(nil), sh.Snapshots...)
	sort.SliceStable(snaps, func(a, b int) bool { return snaps[a].End.Before(snaps[b].End) })
	reasons := make([][]string, len(snaps))
	keep := func(i int, why string) { reasons[i] = append(reasons[i], why) }

	for i, s := range snaps {
		if s.End.After(d.Cutoff) {
			keep(i, "inside the restore window")
		}
		if s.Pinned != "" {
			keep(i, s.Pinned)
		}
	}
	if len(snaps) > 0 {
		keep(len(snaps)-1, "newest snapshot")
	}
	applyTiers(p, snaps, d.Cutoff, keep)
	for _, tl := range sh.Timelines {
		if a := anchor(tl, snaps, d.Cutoff); a >= 0 && reachesWindow(tl, sh.Timelines, d.Cutoff) {
			keep(a, fmt.Sprintf("restore window on timeline %s starts from it", tl.ID))
			from := snaps[a].End
			if d.Cutoff.After(from) {
				from = d.Cutoff
			}
			if from.After(tl.Last) { // an idle source: nothing newer to restore
				from = tl.Last
			}
			d.Promises = append(d.Promises, Promise{Shard: sh.ID, Snapshot: snaps[a].ID, Timeline: tl.ID,
				From: from, To: tl.Last, Rule: "restore window"})
		}
	}
	for i, s := range snaps {
		sd := SnapshotDecision{Snapshot: s, Keep: len(reasons[i]) > 0, Reasons: reasons[i]}
		if !sd.Keep {
			sd.Reasons = []string{"older than the restore window and kept by no hourly/daily/weekly/monthly rule"}
		} else if tl, ok := coveringTimeline(sh.Timelines, s); ok || s.Start == s.End {
			d.Promises = append(d.Promises, Promise{Shard: sh.ID, Snapshot: s.ID, Timeline: tl, From: s.End, To: s.End,
				Rule: "snapshot kept: " + sd.Reasons[0]})
		}
		d.Snapshots = append(d.Snapshots, sd)
	}
	for _, tl := range sh.Timelines {
		runs, ex := decideSegments(p, tl, sh.ID, d, now)
		d.Runs = append(d.Runs, runs...)
		d.Extracts = append(d.Extracts, ex...)
	}
	return d
}

// reachesWindow reports whether a timeline holds restore points the window
// promises: it ends after the cutoff, or it is the newest timeline.
func reachesWindow(tl repo.Timeline, all []repo.Timeline, cutoff optime.Timestamp) bool {
	if tl.Last.After(cutoff) {
		return true
	}
	for _, o := range all {
		if o.Last.After(tl.Last) {
			return false
		}
	}
	return true
}

// covers reports whether tl holds every entry of s's copy range.
func covers(tl repo.Timeline, s Snapshot) bool {
	return tl.Covers(s.Start, s.End, s.FromEmptyOplog)
}

func coveringTimeline(tls []repo.Timeline, s Snapshot) (string, bool) {
	for _, tl := range tls {
		if covers(tl, s) {
			return tl.ID, true
		}
	}
	return "", false
}

// anchor is the snapshot the window on tl starts from: the newest one on tl
// whose end is at or before the cutoff, else the oldest one on tl (points
// before it were never restorable). -1 if tl has none.
func anchor(tl repo.Timeline, snaps []Snapshot, cutoff optime.Timestamp) int {
	best, oldest := -1, -1
	for i, s := range snaps { // in end order
		if !covers(tl, s) {
			continue
		}
		if oldest < 0 {
			oldest = i
		}
		if !s.End.After(cutoff) {
			best = i
		}
	}
	if best >= 0 {
		return best
	}
	return oldest
}

// applyTiers keeps, per tier, the newest snapshot of each of the N most
// recent periods that have one, among snapshots older than the window.
func applyTiers(p Policy, snaps []Snapshot, cutoff optime.Timestamp, keep func(int, string)) {
	tiers := []struct {
		name   string
		n      int
		period func(time.Time) string
	}{
		{"hourly", p.Hourly, func(t time.Time) string { return t.Format("2006-01-02T15") }},
		{"daily", p.Daily, func(t time.Time) string { return t.Format("2006-01-02") }},
		{"weekly", p.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{"monthly", p.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
	}
	for _, tier := range tiers {
		last, count := "", 0
		for i := len(snaps) - 1; i >= 0 && count < tier.n; i-- {
			if snaps[i].End.After(cutoff) {
				continue
			}
			per := tier.period(snaps[i].End.Time().UTC())
			if per == last {
				continue
			}
			last, count = per, count+1
			keep(i, fmt.Sprintf("%s %d of %d (%s)", tier.name, count, tier.n, per))
		}
	}
}
