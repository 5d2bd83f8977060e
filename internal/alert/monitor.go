package alert

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
)

// Deps are the parts of a running agent the monitor reads.
type Deps struct {
	Config config.Alerts
	// Source is the source URI: only its hosts are shown.
	Source config.Secret
	Shard  string
	Repo   *repo.Repository
	// CanRead says whether the agent can read manifests (the repository
	// is not encrypted, or it has the identity).
	CanRead  bool
	Stats    *oplog.Stats
	Spool    *oplog.Spool
	SpoolMax int64
	Runs     *runs.Recorder
	// Topology, when set, returns the newest change of the cluster's
	// shards (nil while none): set for a sharded cluster only.
	Topology func() *TopologyChange
	// Units, when set (a sharded cluster), returns every shard's capture
	// now: the capture alerts are then evaluated for each shard on its
	// own, each event naming its shard, instead of from Stats and Spool.
	Units   func() []Unit
	Version string
	// Deployment is the deployment's name under rewind server ("" for
	// rewind agent); every event carries it.
	Deployment string
	Log        *slog.Logger
}

// Unit is one shard's capture, as the alerts watch it.
type Unit struct {
	Shard string
	Stats *oplog.Stats
	Spool *oplog.Spool
}

// Monitor evaluates the alerts every check_interval and sends what changes.
type Monitor struct {
	d        Deps
	tracker  *tracker
	notifier *Notifier
	base     Event
	storage  storageWatch
	// shardStorage follows each shard's storage errors (Units).
	shardStorage map[string]*storageWatch
	// gapCovered is the newest gap known to have a snapshot after it, so
	// its snapshots are not read again at every check.
	gapCovered optime.Timestamp
	// gap is the last gap observation, read again only when something
	// that changes it happened (see gapStale): an idle agent lists no
	// gap every check (rewind server runs many agents).
	gap      *GapState
	gapAt    time.Time
	gapTL    string
	gapSnaps time.Time
}

// gapRecheck bounds how long a gap observation is kept.
const gapRecheck = 10 * time.Minute

// historyLen is how many events GET /api/v1/alerts shows.
const historyLen = 100

// New builds a monitor; Run starts it.
func New(d Deps) *Monitor {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	host, _ := os.Hostname()
	m := &Monitor{d: d, tracker: newTracker(historyLen), notifier: NewNotifier(d.Config.Webhooks, d.Log), shardStorage: map[string]*storageWatch{},
		base: Event{Deployment: d.Deployment, Shard: d.Shard, SourceHost: SourceHosts(d.Source.Reveal()), Details: map[string]any{},
			Agent: AgentInfo{Host: host, PID: os.Getpid(), Version: d.Version}}}
	if d.Units != nil {
		// A cluster: an alert about the deployment (a failed cluster
		// snapshot, a topology change) is no one shard's; capture alerts
		// name theirs (Condition.Shard).
		m.base.Shard = ""
	}
	return m
}

// Notifier is the monitor's webhook sender (tests tune its retries).
func (m *Monitor) Notifier() *Notifier { return m.notifier }

// View is the firing alerts and the recent events.
func (m *Monitor) View() View { return m.tracker.view() }

// IsFiring reports whether the named alert fires now.
func (m *Monitor) IsFiring(name string) bool { return m.tracker.isFiring(name) }

// Run checks every check_interval until ctx ends; deliveries stop with it.
func (m *Monitor) Run(ctx context.Context) error {
	delivered := make(chan struct{})
	go func() {
		defer close(delivered)
		m.notifier.Run(ctx)
	}()
	defer func() { <-delivered }()
	t := time.NewTicker(m.d.Config.CheckInterval.Std())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		m.Check(ctx, time.Now())
	}
}

// Check evaluates every alert once and sends the events it causes.
func (m *Monitor) Check(ctx context.Context, now time.Time) []Event {
	conds := evaluate(m.d.Config, m.observe(ctx, now))
	if m.d.Units != nil {
		for _, u := range m.d.Units() {
			for _, c := range evaluateCapture(m.d.Config, m.observeUnit(now, u)) {
				c.Shard, c.Summary = u.Shard, "shard "+u.Shard+": "+c.Summary
				conds = append(conds, c)
			}
		}
	}
	events := m.tracker.update(now, m.base, conds)
	send(m.d.Log, m.notifier, events)
	return events
}

// observe reads the agent's live state (its capture's too, unless each
// shard's is observed on its own: Units).
func (m *Monitor) observe(ctx context.Context, now time.Time) Observation {
	var o Observation
	if m.d.Units == nil {
		observeCapture(&o, now, m.d.Stats, m.d.Spool, m.d.SpoolMax, &m.storage)
	}
	if m.d.Runs != nil {
		if r, ok := m.d.Runs.Last(runs.Snapshot); ok {
			if r.Err != nil && m.snapshotSince(ctx, r.Started) {
				r.Err, r.Failures = nil, 0 // a snapshot by hand (or the API) succeeded since
			}
			o.Snapshot = &r
		}
		if r, ok := m.d.Runs.Last(runs.Prune); ok {
			o.Prune = &r
		}
		if r, ok := m.d.Runs.Last(runs.Drill); ok {
			o.Drill = &r
		}
	}
	if m.d.Repo != nil {
		if m.gapStale(now, o.Snapshot) {
			m.gap, m.gapAt = m.observeGap(ctx), now
		}
		o.Gap = m.gap
	}
	if m.d.Topology != nil {
		o.Topology = m.d.Topology()
	}
	return o
}

// observeUnit reads one shard's capture.
func (m *Monitor) observeUnit(now time.Time, u Unit) Observation {
	var o Observation
	sw := m.shardStorage[u.Shard]
	if sw == nil {
		sw = &storageWatch{}
		m.shardStorage[u.Shard] = sw
	}
	observeCapture(&o, now, u.Stats, u.Spool, m.d.SpoolMax, sw)
	return o
}

// observeCapture fills o's capture fields from one capture's numbers.
func observeCapture(o *Observation, now time.Time, st *oplog.Stats, sp *oplog.Spool, spoolMax int64, sw *storageWatch) {
	if st != nil {
		o.LagKnown = !st.SourceNewest().IsZero()
		o.Lag = st.Lag()
		o.SourceDown = st.SourceDownFor(now)
		o.OplogWindow, o.WindowKnown = st.OplogWindow()
		o.OplogFilling = st.OplogFilling()
		o.SpoolFull = st.SpoolFull.Load()
		o.SpoolError, o.SpoolWriteKnown = st.SpoolError(), true
		o.Storage = sw.update(now, st.StorageErrors.Load(), st.Segments.Load(), st.LastError())
	}
	if sp != nil {
		o.SpoolBytes, o.SpoolMax = sp.Bytes(), spoolMax
	}
}

// snapshotSince reports whether the repository holds a complete snapshot
// that started at or after the second started: one taken by hand or over
// the API after a failed scheduled one resolves snapshot_failed as well as
// the agent's next scheduled one does.
func (m *Monitor) snapshotSince(ctx context.Context, started time.Time) bool {
	if m.d.Repo == nil {
		return false
	}
	refs, err := m.d.Repo.ListSnapshots(ctx, m.d.Shard)
	if err != nil || len(refs) == 0 {
		return false
	}
	return !refs[len(refs)-1].Started().Before(started.Truncate(time.Second))
}

// gapStale says whether the gap observation must be read again: never
// read, failed, older than gapRecheck, a new timeline since (capture
// records a gap as it starts one), or a snapshot run since (it may cover
// the gap).
func (m *Monitor) gapStale(now time.Time, snap *runs.Run) bool {
	var tl string
	if m.d.Stats != nil {
		tl = m.d.Stats.Timeline()
	}
	var snapped time.Time
	if snap != nil {
		snapped = snap.Started.Add(snap.Duration)
	}
	stale := m.gap == nil || now.Sub(m.gapAt) >= gapRecheck || tl != m.gapTL || snapped.After(m.gapSnaps)
	m.gapTL, m.gapSnaps = tl, snapped
	return stale
}

// observeGap finds the newest gap and whether a complete snapshot starts
// after it; nil when the repository cannot be read now.
func (m *Monitor) observeGap(ctx context.Context) *GapState {
	gaps, err := m.d.Repo.ListGaps(ctx, m.d.Shard)
	if err != nil {
		m.d.Log.Debug("alerts: list gaps failed", "err", err)
		return nil
	}
	var g repo.Gap
	for _, x := range gaps {
		if x.After.After(g.After) {
			g = x
		}
	}
	if g.After.IsZero() || g.After == m.gapCovered {
		return &GapState{Gap: g}
	}
	covered, err := m.snapshotAfter(ctx, g)
	if err != nil {
		m.d.Log.Debug("alerts: list snapshots failed", "err", err)
		return nil
	}
	if covered {
		m.gapCovered = g.After
	}
	return &GapState{Gap: g, Open: !covered}
}

// snapshotAfter reports whether the newest complete snapshot starts after
// the gap, so restores reach past it. Without the identity to read an
// encrypted manifest, a snapshot started after the gap was recorded counts
// (as for the agent's schedule).
func (m *Monitor) snapshotAfter(ctx context.Context, g repo.Gap) (bool, error) {
	refs, err := m.d.Repo.ListSnapshots(ctx, m.d.Shard)
	if err != nil || len(refs) == 0 {
		return false, err
	}
	newest := refs[len(refs)-1]
	if !m.d.CanRead {
		return newest.Started().After(g.Detected), nil
	}
	man, err := m.d.Repo.ReadManifest(ctx, newest.Shard, newest.ID)
	if err != nil {
		return false, err
	}
	return !man.Start.Before(g.After), nil
}

// SourceHosts is the host list of a MongoDB URI, without credentials or
// options: "db1:27017,db2:27017".
func SourceHosts(uri string) string {
	_, rest, ok := strings.Cut(uri, "://")
	if !ok {
		return ""
	}
	if i := strings.IndexAny(rest, "/?"); i >= 0 {
		rest = rest[:i]
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}
