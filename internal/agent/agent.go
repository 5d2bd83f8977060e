// Package agent is the rewind daemon: it holds the repository's writer lock,
// runs oplog capture (with gap handling and a local spool), snapshots on a
// schedule, restore drills, prunes, serves the HTTP API, evaluates the alerts, and refreshes
// the heartbeat that `rewind status` reads. It shuts down cleanly on ctx end,
// flushing what it captured.
package agent

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
)

// Agent captures one source into one repository: a replica set, or every
// shard and the config server of a sharded cluster.
type Agent struct {
	Config  config.Config
	Log     *slog.Logger
	Version string
	// HeartbeatEvery is how often the heartbeat object is rewritten
	// (default 10 s: `rewind status` counts an agent alive for 30 s).
	HeartbeatEvery time.Duration
	// TopologyEvery is how often a sharded cluster's config server is
	// asked for its shards (default 5 s).
	TopologyEvery time.Duration
	// Deployment is the deployment's name under rewind server, carried by
	// the alerts' events ("" for rewind agent).
	Deployment string
	// Embedded builds the HTTP API without listening (api.listen is
	// ignored): rewind server mounts Handler under the deployment's path.
	Embedded bool
	// OnStarted, when set, is called once the agent holds the repository
	// and is connected, before capture starts.
	OnStarted func()

	// stats is set once by Run; Stats may be called from other goroutines
	// before that.
	stats atomic.Pointer[oplog.Stats]
	// runs records every snapshot and prune, for the metrics and alerts.
	runs *runs.Recorder
	api  atomic.Pointer[api.Server]
	// alerts is the running alert monitor, nil when stopped.
	alerts atomic.Pointer[alert.Monitor]
}

// Alerts is the agent's alert monitor while it runs, nil otherwise.
func (a *Agent) Alerts() *alert.Monitor { return a.alerts.Load() }

// Stats returns the live capture numbers (nil before Run): a cluster's
// first shard's.
func (a *Agent) Stats() *oplog.Stats { return a.stats.Load() }

// Run captures until ctx ends. It returns nil after a clean stop.
func (a *Agent) Run(ctx context.Context) error {
	if a.Log == nil {
		a.Log = slog.Default()
	}
	if a.HeartbeatEvery <= 0 {
		a.HeartbeatEvery = a.Config.Capture.HeartbeatInterval.Std()
	}
	if a.HeartbeatEvery <= 0 {
		a.HeartbeatEvery = 10 * time.Second
	}
	if a.TopologyEvery <= 0 {
		a.TopologyEvery = 5 * time.Second
	}
	a.stats.Store(newStats())
	a.runs = &runs.Recorder{}
	w, err := a.open(ctx)
	if err != nil {
		if ctx.Err() != nil {
			// Stopped (SIGTERM) while starting: nothing was read, a clean stop.
			a.Log.Info("agent stopped while starting")
			return nil
		}
		return err
	}
	defer w.close()
	if a.OnStarted != nil {
		a.OnStarted()
	}
	for _, u := range w.allUnits() {
		u.log.Info("agent started", "source", a.Config.Source, "repo", redact.URL(a.Config.Repo),
			"flavor", u.src.Flavor, "shard", u.shard, "resume_after", u.resume.After.String(), "timeline", u.resume.Timeline)
	}

	g, gctx := errgroup.WithContext(ctx)
	capCtx, stopCapture := context.WithCancel(gctx)
	defer stopCapture()
	g.Go(func() error { return w.holdLock(gctx, a.Log, a.lockOptions(time.Minute)) })
	w.startUnit = func(u *unit) {
		g.Go(func() error { return a.compactor(w, u).run(capCtx) })
		g.Go(func() error {
			// The source's oplog is measured at least every 5 s (lag,
			// source_unreachable), whatever the heartbeat's pace.
			oplog.WatchSource(capCtx, u.src, u.stats, min(a.HeartbeatEvery, 5*time.Second))
			return nil
		})
		g.Go(func() error {
			err := a.capture(capCtx, u)
			stopCapture()
			return err
		})
	}
	for _, u := range w.allUnits() {
		w.startUnit(u)
	}
	g.Go(func() error { return a.scheduler(w).run(capCtx) })
	// Prune keeps every part of a kept cluster snapshot together.
	g.Go(func() error { return a.pruner(w).run(capCtx) })
	if w.cluster == nil {
		g.Go(func() error { return a.driller(w).run(capCtx) })
	} else {
		if a.Config.Drills.Every > 0 {
			a.Log.Warn("sharded cluster: the agent runs no restore drill yet (drills.every is ignored); `rewind drill` does not drill a cluster either",
				"shards", w.cluster.topology().Names())
		}
		g.Go(func() error { return a.watchTopology(capCtx, w) })
	}
	alerts := a.alertMonitor(w)
	a.alerts.Store(alerts)
	defer a.alerts.Store(nil)
	g.Go(func() error { return alerts.Run(capCtx) })
	g.Go(func() error { return a.serveAPI(capCtx, w, alerts) })
	g.Go(func() error {
		defer stopCapture()
		return a.heartbeat(capCtx, w)
	})
	err = g.Wait()
	if errors.Is(err, context.Canceled) || (err == nil && ctx.Err() != nil) {
		for _, u := range w.allUnits() {
			u.log.Info("agent stopped", "last_durable", u.stats.LastDurable().String())
		}
		return nil
	}
	return err
}

// newStats are a unit's live numbers, before its capture starts.
func newStats() *oplog.Stats { return &oplog.Stats{} }

// serveAPI runs the HTTP API until ctx ends (api.listen "" turns it off).
// A server that cannot start is logged, not fatal: capture matters more.
func (a *Agent) serveAPI(ctx context.Context, w *writer, alerts *alert.Monitor) error {
	if a.Config.API.Listen == "" && !a.Embedded {
		return nil
	}
	srv, err := api.New(api.Deps{Config: a.Config.API, Repo: w.repo, Source: w.src, Shard: w.shard,
		Stats: w.stats, Spool: w.spool, Units: apiUnits(w), Version: a.Version, SnapshotParallel: a.Config.Snapshot.Parallel,
		Runs: a.runs, Alerts: alerts, Log: a.Log})
	switch {
	case err == nil && a.Embedded:
		a.api.Store(srv)
		defer a.api.Store(nil)
		srv.Serve(ctx)
	case err == nil:
		a.api.Store(srv)
		err = srv.Run(ctx)
	}
	if err != nil {
		a.Log.Error("the HTTP API is not serving; capture goes on without it", "err", err)
	}
	return nil
}

// Handler is the HTTP API of an Embedded agent while it captures, nil
// before it has started and after it stopped.
func (a *Agent) Handler() http.Handler {
	if srv := a.api.Load(); srv != nil {
		return srv.Handler()
	}
	return nil
}

// Gatherer is the agent's Prometheus registry while its API is built, nil
// otherwise.
func (a *Agent) Gatherer() prometheus.Gatherer {
	if srv := a.api.Load(); srv != nil {
		return srv.Gatherer()
	}
	return nil
}

// apiUnits are the writer's capture units as the API's metrics see them.
func apiUnits(w *writer) []api.Unit {
	units := w.allUnits()
	out := make([]api.Unit, len(units))
	for i, u := range units {
		out[i] = api.Unit{Shard: u.shard, Stats: u.stats, Spool: u.spool}
	}
	return out
}

// APIAddr is the address the HTTP API listens on, "" until it serves.
func (a *Agent) APIAddr() string {
	if srv := a.api.Load(); srv != nil {
		return srv.Addr()
	}
	return ""
}

// alertMonitor watches the capture, the runs and the repository for the
// alerts of docs/ALERTS.md.
func (a *Agent) alertMonitor(w *writer) *alert.Monitor {
	d := alert.Deps{Config: a.Config.Alerts, Source: a.Config.Source, Shard: w.shard, Repo: w.repo,
		CanRead: w.canRead, Stats: w.stats, Spool: w.spool, SpoolMax: a.Config.Capture.SpoolMaxBytes,
		Runs: a.runs, Version: a.Version, Deployment: a.Deployment, Log: a.Log}
	if w.cluster != nil {
		d.Topology = w.cluster.changed.Load
		// Every shard's capture is watched on its own: one shard failing
		// fires an alert naming it, whichever shard it is.
		d.Units = func() []alert.Unit {
			var out []alert.Unit
			for _, u := range w.allUnits() {
				out = append(out, alert.Unit{Shard: u.shard, Stats: u.stats, Spool: u.spool})
			}
			return out
		}
	}
	return alert.New(d)
}

func (a *Agent) compactor(w *writer, u *unit) *compactor {
	cc := a.Config.Capture
	return &compactor{w: w, shard: u.shard, log: u.log, every: cc.CompactInterval.Std(), minAge: cc.CompactAfter.Std(),
		target: cc.CompactTargetBytes, canRead: w.canRead, now: time.Now}
}

// heartbeat rewrites every unit's heartbeat object until ctx ends.
func (a *Agent) heartbeat(ctx context.Context, w *writer) error {
	started := time.Now()
	host, _ := os.Hostname()
	t := time.NewTicker(a.HeartbeatEvery)
	defer t.Stop()
	for {
		for _, u := range w.allUnits() {
			st := u.stats
			hb := repo.Heartbeat{Shard: u.shard, Host: host, PID: os.Getpid(), Version: a.Version,
				Started: started, Updated: time.Now(), LastDurable: st.LastDurable(), Lag: st.Lag(),
				CoveredThrough: st.CoveredThrough(), Error: captureError(st)}
			if pm := st.LastPollMark(); !pm.Newest.IsZero() {
				hb.Polled = &repo.PolledOplog{Count: pm.Mark.Count, Oldest: pm.Mark.Oldest, Newest: pm.Newest}
			}
			// Bounded by the period: a stalled storage connection delays
			// the next heartbeat, never stops them.
			hctx, cancel := context.WithTimeout(ctx, a.HeartbeatEvery)
			err := w.repo.WriteHeartbeat(hctx, hb)
			cancel()
			if err != nil && ctx.Err() == nil {
				u.log.Warn("write heartbeat failed", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// captureError is why capture fails now, for the heartbeat (`rewind
// status`): a spool it cannot write (capture paused), else the last
// storage error, "" while it captures.
func captureError(st *oplog.Stats) string {
	if e := st.SpoolError(); e != "" {
		return "capture paused: " + e
	}
	return st.LastError()
}

// defaultSpoolDir keeps each repository's spool apart on a shared host.
func defaultSpoolDir(repoID string) string { return config.StatePath("spool", repoID) }
