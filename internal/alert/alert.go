// Package alert watches the agent's live state and tells operators of
// trouble before they need a restore: capture lag, gaps, failed snapshots
// and prunes, a short source oplog window, failing storage and a filling
// spool. Each alert fires once when its condition starts and once when it
// resolves; every change is logged and POSTed to the configured webhooks
// (generic JSON or Slack), with bounded retries that never hold up capture.
// The rules are pure functions of an Observation (rules.go); the Monitor
// gathers observations and keeps the state (monitor.go); the Notifier
// delivers (webhook.go).
package alert

import (
	"sort"
	"sync"
	"time"
)

// The alerts, by the name webhooks, the API and the metrics carry.
const (
	CaptureLag     = "capture_lag"
	Gap            = "gap"
	SnapshotFailed = "snapshot_failed"
	PruneFailed    = "prune_failed"
	OplogWindow    = "oplog_window"
	StorageErrors  = "storage_errors"
	SpoolFull      = "spool_full"
	// SpoolUnwritable fires while capture cannot write its spool (its
	// filesystem full or read-only) and has paused.
	SpoolUnwritable = "spool_unwritable"
	// TopologyChanged fires when a shard is added to or removed from the
	// sharded cluster the agent captures.
	TopologyChanged = "topology_changed"
	// DrillFailed fires while the agent's latest restore drill did not
	// prove its point exact.
	DrillFailed = "drill_failed"
	// SourceUnreachable fires when the source has not answered for
	// alerts.source_unreachable_for: nothing new is captured meanwhile.
	SourceUnreachable = "source_unreachable"
	// DeploymentFailed fires while rewind server cannot run a
	// deployment's capture (source or repository unreachable, wrong
	// credentials, a repository of another source) and retries it.
	DeploymentFailed = "deployment_failed"
)

// Names lists every alert.
var Names = []string{CaptureLag, Gap, SnapshotFailed, PruneFailed, OplogWindow, StorageErrors, SpoolFull, SpoolUnwritable, TopologyChanged, DrillFailed, SourceUnreachable, DeploymentFailed}

// States of an event.
const (
	Firing   = "firing"
	Resolved = "resolved"
)

// Severities.
const (
	Warning  = "warning"
	Critical = "critical"
)

// AgentInfo says which agent sent an event.
type AgentInfo struct {
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
}

// Event is an alert firing or resolving: the generic webhook body, and an
// entry of GET /api/v1/alerts.
type Event struct {
	Alert    string `json:"alert"`
	State    string `json:"state"`
	Severity string `json:"severity"`
	// Summary is one line for a human.
	Summary string         `json:"summary"`
	Details map[string]any `json:"details"`
	// Deployment names the deployment under rewind server (absent for
	// rewind agent).
	Deployment string `json:"deployment,omitempty"`
	Shard      string `json:"shard"`
	// SourceHost is the source's hosts, without credentials.
	SourceHost string     `json:"source_host"`
	Started    time.Time  `json:"started"`
	Resolved   *time.Time `json:"resolved"`
	Agent      AgentInfo  `json:"agent"`
}

// Condition is what a rule finds: whether its alert's condition holds now,
// and how to describe it.
type Condition struct {
	Alert string
	// Shard names the shard a capture alert is about in a sharded
	// cluster ("" for the agent's own, or the replica set's): each
	// shard's alert fires and resolves on its own, its event naming it.
	Shard    string
	Active   bool
	Severity string
	Summary  string
	Details  map[string]any
}

// View is the alerts as GET /api/v1/alerts shows them.
type View struct {
	// Firing are the alerts firing now, by name.
	Firing []Event `json:"firing"`
	// Recent are the latest events, newest first.
	Recent []Event `json:"recent"`
	// Checks counts the evaluations of every alert since the agent
	// started; CheckedAt is when the last one ran (absent before the
	// first). Together they show the alert loop is alive.
	Checks    uint64     `json:"checks"`
	CheckedAt *time.Time `json:"checked_at,omitempty"`
}

// tracker is the state machine: it turns conditions into events, one when
// a condition starts and one when it ends, none while it holds.
type tracker struct {
	mu      sync.Mutex
	firing  map[string]Event
	history []Event // oldest first
	keep    int
	checks  uint64
	last    time.Time
}

func newTracker(keep int) *tracker {
	return &tracker{firing: map[string]Event{}, keep: keep}
}

// update applies the conditions found at now and returns the events they
// cause. base carries the fields every event shares (shard, agent...). An
// alert with no condition (not measurable now, or turned off) keeps its
// state.
func (t *tracker) update(now time.Time, base Event, conds []Condition) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Event
	for _, c := range conds {
		ev := base
		ev.Alert, ev.Severity, ev.Summary, ev.Details = c.Alert, c.Severity, c.Summary, c.Details
		key := c.Alert
		if c.Shard != "" {
			ev.Shard, key = c.Shard, c.Alert+"@"+c.Shard
		}
		cur, firing := t.firing[key]
		switch {
		case c.Active && !firing:
			ev.State, ev.Started = Firing, now
			t.firing[key] = ev
			out = append(out, ev)
		case c.Active:
			ev.State, ev.Started = Firing, cur.Started // still firing: fresh numbers, no event
			t.firing[key] = ev
		case firing:
			end := now
			ev.State, ev.Started, ev.Resolved = Resolved, cur.Started, &end
			delete(t.firing, key)
			out = append(out, ev)
		}
	}
	t.checks++
	t.last = now
	t.history = append(t.history, out...)
	if n := len(t.history) - t.keep; n > 0 {
		t.history = append([]Event(nil), t.history[n:]...)
	}
	return out
}

func (t *tracker) isFiring(name string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ev := range t.firing {
		if ev.Alert == name {
			return true
		}
	}
	return false
}

func (t *tracker) view() View {
	t.mu.Lock()
	defer t.mu.Unlock()
	v := View{Firing: []Event{}, Recent: []Event{}, Checks: t.checks}
	if t.checks > 0 {
		last := t.last.UTC()
		v.CheckedAt = &last
	}
	for _, ev := range t.firing {
		v.Firing = append(v.Firing, ev)
	}
	sort.Slice(v.Firing, func(a, b int) bool {
		if v.Firing[a].Alert != v.Firing[b].Alert {
			return v.Firing[a].Alert < v.Firing[b].Alert
		}
		return v.Firing[a].Shard < v.Firing[b].Shard
	})
	for i := len(t.history) - 1; i >= 0; i-- {
		v.Recent = append(v.Recent, t.history[i])
	}
	return v
}
