package alert

import (
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
)

// Observation is the agent's state at one check. A nil pointer or a false
// "known" flag means that part could not be measured now: its alert keeps
// its state.
type Observation struct {
	// Lag is the capture lag; LagKnown is false until the source's newest
	// entry was measured.
	Lag      time.Duration
	LagKnown bool
	// OplogWindow is the source's oplog window, when measured.
	OplogWindow time.Duration
	WindowKnown bool
	// OplogFilling is true while the source's oplog is below its maximum
	// size: nothing was dropped yet and the window grows.
	OplogFilling bool
	// SourceDown is how long the source has not answered (0: it does).
	SourceDown time.Duration
	// Storage is how long repository writes have been failing.
	Storage StorageState
	// SpoolBytes of SpoolMax are waiting in the spool; SpoolFull is set
	// while capture has paused reading because the spool is full.
	SpoolBytes, SpoolMax int64
	SpoolFull            bool
	// SpoolError is why capture cannot write its spool (it has paused),
	// empty while it can; SpoolWriteKnown is false when no capture runs.
	SpoolError      string
	SpoolWriteKnown bool
	// Gap is the newest recorded gap, nil when the repository could not
	// be read.
	Gap *GapState
	// Snapshot, Prune and Drill are the latest runs, nil before the first.
	Snapshot, Prune, Drill *runs.Run
	// Topology is the newest change of a sharded cluster's shards the
	// agent saw, nil when none (and always for a replica set).
	Topology *TopologyChange
}

// TopologyChange is a change of a sharded cluster's shards, seen at At.
type TopologyChange struct {
	At             time.Time
	Added, Removed []string
}

// GapState is the newest gap and whether a snapshot after it exists.
type GapState struct {
	// Gap is the newest gap; its zero value means the shard has none.
	Gap repo.Gap
	// Open is true while no complete snapshot starts after the gap: no
	// restore can reach past it.
	Open bool
}

// StorageState follows the repository's write errors.
type StorageState struct {
	// Failing is set from the first error after a successful write until
	// the next successful write.
	Failing bool
	// For is how long it has been failing; Errors counts the failed
	// writes meanwhile; LastError is the newest one's message.
	For       time.Duration
	Errors    int64
	LastError string
}

// evaluate applies every rule to o, with the thresholds of cfg. A rule
// whose threshold is 0, or whose input is unknown, gives no condition.
func evaluate(cfg config.Alerts, o Observation) []Condition {
	var out []Condition
	add := func(c *Condition) {
		if c != nil {
			out = append(out, *c)
		}
	}
	out = append(out, evaluateCapture(cfg, o)...)
	add(gapRule(o.Gap))
	add(runRule(SnapshotFailed, "snapshot", o.Snapshot))
	add(runRule(PruneFailed, "prune", o.Prune))
	add(runRule(DrillFailed, "restore drill", o.Drill))
	add(topologyRule(o.Topology))
	return out
}

// evaluateCapture applies the rules about one capture (one shard's): lag,
// source, oplog window, storage and spool.
func evaluateCapture(cfg config.Alerts, o Observation) []Condition {
	var out []Condition
	for _, c := range []*Condition{lagRule(cfg.LagAbove.Std(), o), sourceRule(cfg.SourceUnreachableFor.Std(), o.SourceDown),
		windowRule(cfg.OplogWindowBelow.Std(), o), storageRule(cfg.StorageErrorsFor.Std(), o.Storage),
		spoolRule(cfg.SpoolAbovePercent, o), spoolWriteRule(o)} {
		if c != nil {
			out = append(out, *c)
		}
	}
	return out
}

// topologyRule fires once a shard was added or removed: the cluster's
// restore window breaks there until a cluster snapshot is taken after it
// (the agent takes one after a topology change, and captures an added
// shard from when it sees it). It stays firing while the agent runs.
func topologyRule(t *TopologyChange) *Condition {
	if t == nil {
		return nil
	}
	return &Condition{Alert: TopologyChanged, Active: true, Severity: Critical,
		Details: map[string]any{"at": t.At.UTC().Format(time.RFC3339), "added": t.Added, "removed": t.Removed},
		Summary: fmt.Sprintf("the cluster's shards changed at %s (added %v, removed %v): no cluster restore reaches across it until a cluster snapshot is taken after it (the agent takes one when snapshots are scheduled, and captures an added shard from now on)",
			t.At.UTC().Format(time.RFC3339), t.Added, t.Removed)}
}

func lagRule(above time.Duration, o Observation) *Condition {
	if above <= 0 || !o.LagKnown {
		return nil
	}
	c := &Condition{Alert: CaptureLag, Active: o.Lag > above, Severity: Warning,
		Details: map[string]any{"lag_seconds": o.Lag.Seconds(), "threshold_seconds": above.Seconds()}}
	if c.Active {
		c.Summary = fmt.Sprintf("capture lag is %s, above %s: the newest changes are not in the repository yet", o.Lag, above)
	} else {
		c.Summary = fmt.Sprintf("capture lag is %s, back within %s", o.Lag, above)
	}
	return c
}

// sourceRule fires while the source does not answer: the lag cannot be
// measured then, and nothing new reaches the repository.
func sourceRule(after, down time.Duration) *Condition {
	if after <= 0 {
		return nil
	}
	c := &Condition{Alert: SourceUnreachable, Active: down > after, Severity: Critical,
		Details: map[string]any{"down_seconds": down.Seconds(), "threshold_seconds": after.Seconds()}}
	if c.Active {
		c.Summary = fmt.Sprintf("the source has not answered for %s: nothing new is captured; check that it runs and can be reached from this host", down.Round(time.Second))
	} else {
		c.Summary = "the source answers again"
	}
	return c
}

func gapRule(g *GapState) *Condition {
	if g == nil {
		return nil
	}
	c := &Condition{Alert: Gap, Active: g.Open, Severity: Critical, Details: map[string]any{}}
	if g.Gap.After.IsZero() {
		c.Summary = "no gap recorded"
		return c
	}
	from, to := g.Gap.Before.Time().UTC(), g.Gap.After.Time().UTC()
	c.Details = map[string]any{"lost_from": g.Gap.Before.T, "lost_to": g.Gap.After.T, "lost_seconds": to.Sub(from).Seconds()}
	if g.Open {
		c.Summary = fmt.Sprintf("gap in the oplog: changes after %s and before %s were lost while capture was down; no restore reaches past %s until a new snapshot completes",
			from.Format(time.RFC3339), to.Format(time.RFC3339), from.Format(time.RFC3339))
	} else {
		c.Summary = fmt.Sprintf("a snapshot taken after the gap (%s to %s) completed: restores are possible again from there",
			from.Format(time.RFC3339), to.Format(time.RFC3339))
	}
	return c
}

// runRule fires while the latest run of a kind failed.
func runRule(name, what string, r *runs.Run) *Condition {
	if r == nil {
		return nil
	}
	c := &Condition{Alert: name, Active: r.Err != nil, Severity: Critical,
		Details: map[string]any{"consecutive_failures": r.Failures, "duration_seconds": r.Duration.Seconds()}}
	if r.Err != nil {
		c.Summary = fmt.Sprintf("%s failed (%d in a row): %s", what, r.Failures, OneLine(r.Err.Error()))
	} else {
		c.Summary = fmt.Sprintf("%s succeeded again", what)
	}
	return c
}

func windowRule(below time.Duration, o Observation) *Condition {
	if below <= 0 || !o.WindowKnown {
		return nil
	}
	c := &Condition{Alert: OplogWindow, Active: o.OplogWindow < below && !o.OplogFilling, Severity: Warning,
		Details: map[string]any{"window_seconds": o.OplogWindow.Seconds(), "threshold_seconds": below.Seconds(),
			"oplog_filling": o.OplogFilling}}
	switch {
	case o.OplogFilling:
		c.Summary = fmt.Sprintf("the source's oplog holds %s and is not full yet: its window grows", o.OplogWindow)
	case c.Active:
		c.Summary = fmt.Sprintf("the source's oplog holds only %s, below %s: a capture outage longer than that becomes a gap; enlarge the oplog", o.OplogWindow, below)
	default:
		c.Summary = fmt.Sprintf("the source's oplog holds %s, at least %s", o.OplogWindow, below)
	}
	return c
}

func storageRule(after time.Duration, s StorageState) *Condition {
	if after <= 0 {
		return nil
	}
	c := &Condition{Alert: StorageErrors, Active: s.Failing && s.For >= after, Severity: Critical,
		Details: map[string]any{"failing_seconds": s.For.Seconds(), "errors": s.Errors, "threshold_seconds": after.Seconds()}}
	if c.Active {
		c.Summary = fmt.Sprintf("repository writes have failed for %s (%d errors, none succeeded): capture goes on into the spool; last error: %s",
			s.For.Round(time.Second), s.Errors, OneLine(s.LastError))
	} else {
		c.Summary = "repository writes succeed"
	}
	return c
}

func spoolRule(above int, o Observation) *Condition {
	if above <= 0 || o.SpoolMax <= 0 {
		return nil
	}
	pct := float64(o.SpoolBytes) * 100 / float64(o.SpoolMax)
	if o.SpoolFull {
		pct = max(pct, 100)
	}
	c := &Condition{Alert: SpoolFull, Active: pct > float64(above), Severity: Critical,
		Details: map[string]any{"spool_bytes": o.SpoolBytes, "spool_max_bytes": o.SpoolMax, "percent": pct, "threshold_percent": above}}
	if c.Active {
		c.Summary = fmt.Sprintf("the spool is %.0f%% full (%d of %d bytes), above %d%%: uploads are not keeping up; when it is full capture pauses and the source's oplog may roll past it",
			pct, o.SpoolBytes, o.SpoolMax, above)
	} else {
		c.Summary = fmt.Sprintf("the spool is %.0f%% full, at most %d%%", pct, above)
	}
	return c
}

// spoolWriteRule fires while capture cannot write its spool: it has paused
// reading the source, whose oplog keeps the entries meanwhile.
func spoolWriteRule(o Observation) *Condition {
	if !o.SpoolWriteKnown {
		return nil
	}
	spoolErr := o.SpoolError
	c := &Condition{Alert: SpoolUnwritable, Active: spoolErr != "", Severity: Critical, Details: map[string]any{}}
	if c.Active {
		c.Details["error"] = OneLine(spoolErr)
		c.Summary = "capture cannot write its spool and has paused (nothing is lost while the source's oplog holds the entries; it goes on by itself once the spool can be written): " +
			OneLine(spoolErr)
	} else {
		c.Summary = "capture writes its spool again"
	}
	return c
}

// OneLine makes s one line of at most 300 characters (an error in a summary).
func OneLine(s string) string {
	const limit = 300
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if r == '\n' || r == '\r' {
			r = ' '
		}
		out = append(out, r)
		if len(out) == limit {
			return string(out) + "..."
		}
	}
	return string(out)
}

// storageWatch turns the capture's counters into a StorageState: failing
// from the first new error after a successful write until the next one.
type storageWatch struct {
	errs, segs int64
	since      time.Time
	errsSince  int64
}

func (w *storageWatch) update(now time.Time, errs, segs int64, lastErr string) StorageState {
	// A write that succeeded since the last look ends a failing run,
	// whatever failed around it.
	if segs > w.segs {
		w.since = time.Time{}
	} else if errs > w.errs && w.since.IsZero() {
		w.since, w.errsSince = now, w.errs
	}
	w.errs, w.segs = errs, segs
	if w.since.IsZero() {
		return StorageState{}
	}
	return StorageState{Failing: true, For: now.Sub(w.since), Errors: errs - w.errsSince, LastError: lastErr}
}
