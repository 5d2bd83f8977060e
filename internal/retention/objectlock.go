package retention

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// Held is something a prune would delete but leaves, because the
// repository's object lock still retains it (rewind init --object-lock):
// the first prune after Until deletes it.
type Held struct {
	What  string    // "snapshot ID", "segments of timeline T", or an orphan's key
	Until time.Time // when its retention (plus repo.LockMargin) has ended
	Bytes int64
}

// hold takes out of res what the object lock still retains, and lists it
// in res.Held. A snapshot stays while its manifest is retained. Segments
// go from the outer ends of a timeline inwards (deleteOrder), so a
// retained one keeps every segment between it and the kept run too: what
// is left stays one unbroken run. An extract whose every segment stays in
// place is not copied.
func (res *Result) hold(ctx context.Context, r *repo.Repository, now time.Time) error {
	until, err := r.LockedUntil(ctx, "snapshots/", "oplog/", "data/", "timelines/", "oplog-index/")
	if err != nil || until == nil {
		return err
	}
	retained := func(key string) (time.Time, bool) {
		u, ok := until[key]
		return u, ok && u.After(now)
	}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		for j := range d.Snapshots {
			s := &d.Snapshots[j]
			if u, ok := retained(repo.SnapshotManifestKey(s.Shard, s.ID)); !s.Keep && ok {
				s.Keep = true
				s.Reasons = append(s.Reasons, "retained by object lock until "+u.UTC().Format(time.RFC3339))
				res.Held = append(res.Held, Held{What: "snapshot " + s.ID, Until: u})
			}
		}
		res.holdSegments(d, retained)
	}
	var orphans []Orphan
	for _, o := range res.Orphans {
		if u, ok := retained(o.Key); ok {
			res.Held = append(res.Held, Held{What: o.Key, Until: u, Bytes: o.Size})
			continue
		}
		orphans = append(orphans, o)
	}
	res.Orphans = orphans
	return nil
}

// holdSegments keeps, per timeline, the dropped segments from the first
// retained one (walking in deleteOrder) up to the kept run.
func (res *Result) holdSegments(d *Decision, retained func(string) (time.Time, bool)) {
	held := map[string]time.Time{}
	for _, seg := range heldSegments(*d, retained) {
		held[seg.Key], _ = retained(seg.Key)
	}
	if len(held) == 0 {
		return
	}
	var runs []SegmentRun
	for _, run := range d.Runs {
		for _, s := range run.Segments {
			keep, why := run.Keep, run.Reason
			if _, isHeld := held[s.Key]; isHeld {
				keep, why = true, "retained by object lock"
			}
			if n := len(runs); n > 0 && runs[n-1].Timeline == run.Timeline && runs[n-1].Keep == keep && runs[n-1].Reason == why {
				r := &runs[n-1]
				r.Segments, r.Last, r.Bytes = append(r.Segments, s), s.Last, r.Bytes+s.Size
				continue
			}
			runs = append(runs, SegmentRun{Shard: run.Shard, Timeline: run.Timeline, First: s.First, Last: s.Last,
				Segments: []repo.SegmentInfo{s}, Bytes: s.Size, Keep: keep, Reason: why})
		}
	}
	d.Runs = runs
	for _, r := range runs {
		if _, ok := held[r.Segments[0].Key]; !ok || !r.Keep {
			continue
		}
		h := Held{What: fmt.Sprintf("%d segments of timeline %s", len(r.Segments), r.Timeline), Bytes: r.Bytes}
		for _, s := range r.Segments {
			if u := held[s.Key]; u.After(h.Until) {
				h.Until = u
			}
		}
		res.Held = append(res.Held, h)
	}
	var extracts []Extract
	for _, ex := range d.Extracts {
		all := true
		for _, s := range ex.Segments {
			_, ok := held[s.Key]
			all = all && ok
		}
		if !all {
			extracts = append(extracts, ex)
		}
	}
	d.Extracts = extracts
}

// heldSegments lists the dropped segments that stay: on each side of
// each timeline's kept run, walking in deleteOrder, the first retained
// one and every one after it.
func heldSegments(d Decision, retained func(string) (time.Time, bool)) []repo.SegmentInfo {
	var out []repo.SegmentInfo
	for _, side := range deleteSides(d) {
		stop := false
		for _, s := range side {
			_, ok := retained(s.Key)
			stop = stop || ok
			if stop {
				out = append(out, s)
			}
		}
	}
	return out
}

// heldError records a delete the store refused because of a retention
// prune's plan did not expect (a clock far off, or objects written later
// than their neighbours): the object stays and the prune goes on.
func (res *Result) heldError(err error, what string) bool {
	var re *storage.RetainedError
	if !errors.As(err, &re) {
		return false
	}
	res.Held = append(res.Held, Held{What: what, Until: re.Until})
	return true
}

// logHeld logs, once per prune, what the object lock keeps and when the
// first and the last of it may go.
func (res *Result) logHeld(log *slog.Logger) {
	if len(res.Held) == 0 {
		return
	}
	first, last := res.Held[0].Until, res.Held[0].Until
	for _, h := range res.Held[1:] {
		first, last = minTime(first, h.Until), maxTime(last, h.Until)
	}
	log.Info("prune leaves what the object lock still retains; a later prune deletes it", "held", len(res.Held),
		"first_deletable", first.UTC().Format(time.RFC3339), "last_deletable", last.UTC().Format(time.RFC3339))
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
