package server

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/storage"
)

// DeploymentView is one deployment as GET /api/v1/deployments shows it.
type DeploymentView struct {
	Name string `json:"name"`
	// Origin is "file" (declared in the server's file: read-only over the
	// API) or "api" (added with POST).
	Origin string `json:"origin"`
	// State is this process's: starting, capturing, standby (another
	// process holds it), waiting (this one is at max_deployments) or
	// failed (retried at retry_at).
	State   string     `json:"state"`
	Error   string     `json:"error,omitempty"`
	Since   time.Time  `json:"since"`
	RetryAt *time.Time `json:"retry_at,omitempty"`
	// Holder is the process holding the repository's writer lock, read
	// from the repository (null when none holds it).
	Holder *Holder `json:"holder"`
	// Source is the source's hosts, without credentials.
	Source string `json:"source"`
	// Repo is the repository URL, without credentials.
	Repo     string   `json:"repo"`
	Settings Settings `json:"settings"`
	status.Summary
	// AlertsFiring names the alerts firing now: the agent's, and
	// deployment_failed while it cannot run.
	AlertsFiring []string `json:"alerts_firing"`
	// Trouble is true when the deployment needs a look: failed, an alert
	// firing, or nothing restorable (the dashboard lists these first).
	Trouble bool `json:"trouble"`
}

// Holder is a process holding a repository's writer lock.
type Holder struct {
	Host        string    `json:"host"`
	PID         int       `json:"pid"`
	Since       time.Time `json:"since"`
	Refreshed   time.Time `json:"refreshed"`
	ThisProcess bool      `json:"this_process"`
}

// Settings are the schedule and retention in force, as durations ("24h").
type Settings struct {
	FlushInterval string `json:"flush_interval"`
	SnapshotEvery string `json:"snapshot_every"`
	RestoreWindow string `json:"restore_window"`
}

func settingsOf(c config.Config) Settings {
	return Settings{FlushInterval: c.Capture.FlushInterval.String(), SnapshotEvery: c.Snapshot.Every.String(),
		RestoreWindow: c.Retention.RestoreWindow.String()}
}

// summaryTTL is how long a deployment's summary is reused: a dashboard
// polling every few seconds costs each repository one read per TTL.
const summaryTTL = 5 * time.Second

// summaryCache keeps the repository handle and the last summary.
type summaryCache struct {
	mu     sync.Mutex
	store  storage.Store
	repo   *repo.Repository
	at     time.Time
	sum    status.Summary
	holder *Holder
	err    error
}

// view builds the deployment's line.
func (s *Server) viewOf(ctx context.Context, d *deployment) DeploymentView {
	st := d.view()
	cfg := d.spec.Config
	v := DeploymentView{Name: d.spec.Name, Origin: d.origin, State: st.State, Error: st.Error, Since: st.Since,
		Source: alert.SourceHosts(cfg.Source.Reveal()), Repo: redact.URL(cfg.Repo), AlertsFiring: []string{},
		Settings: settingsOf(cfg)}
	if v.Source == "" && len(cfg.Shards) > 0 {
		v.Source = alert.SourceHosts(cfg.Shards[0].URI.Reveal()) + ", ..."
	}
	if !st.RetryAt.IsZero() && st.State == StateFailed {
		v.RetryAt = &st.RetryAt
	}
	sum, holder, err := d.summary(ctx)
	v.Summary, v.Holder = sum, holder
	switch {
	case errors.Is(err, repo.ErrNoRepository):
		v.Warnings = append(v.Warnings, "the repository does not exist yet: the server creates it once the source answers")
	case err != nil:
		v.Warnings = append(v.Warnings, "the repository cannot be read: "+err.Error())
	}
	if v.Warnings == nil {
		v.Warnings = []string{}
	}
	for _, ev := range d.alerts.View().Firing {
		v.AlertsFiring = append(v.AlertsFiring, ev.Alert)
	}
	if st.Agent != nil {
		if m := st.Agent.Alerts(); m != nil {
			for _, ev := range m.View().Firing {
				v.AlertsFiring = append(v.AlertsFiring, ev.Alert)
			}
		}
	}
	v.Trouble = st.State == StateFailed || len(v.AlertsFiring) > 0 || err != nil || v.RestoreWindow == nil
	return v
}

// summary reads the repository's summary and its writer, at most once per
// summaryTTL.
func (d *deployment) summary(ctx context.Context) (status.Summary, *Holder, error) {
	c := &d.cache
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.at) < summaryTTL {
		return c.sum, c.holder, c.err
	}
	c.at = time.Now()
	c.sum, c.holder, c.err = status.Summary{}, nil, nil
	if c.repo == nil {
		if c.err = c.open(ctx, d); c.err != nil {
			return c.sum, nil, c.err
		}
	}
	c.sum, c.err = status.Summarize(ctx, c.repo, time.Now())
	if c.err == nil {
		c.holder, c.err = writerOf(ctx, c.repo, d.spec.Config.Lock.StaleAfter.Std())
	}
	return c.sum, c.holder, c.err
}

// open opens the repository for reading (its manifests with the
// deployment's identity, when it has one).
func (c *summaryCache) open(ctx context.Context, d *deployment) error {
	cfg := d.spec.Config
	ids, err := repo.ParseIdentity(cfg.Identity.Reveal())
	if err != nil {
		return err
	}
	store, err := storage.Open(ctx, cfg.Repo)
	if err != nil {
		return err
	}
	r, err := repo.Open(ctx, store, repo.OpenOptions{Location: redact.URL(cfg.Repo), Identities: ids})
	if err != nil {
		store.Close()
		return err
	}
	c.store, c.repo = store, r
	return nil
}

// close releases the repository handle.
func (c *summaryCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.store != nil {
		c.store.Close()
	}
	c.store, c.repo = nil, nil
}

// writerOf returns the live exclusive lock's holder, nil when none.
func writerOf(ctx context.Context, r *repo.Repository, staleAfter time.Duration) (*Holder, error) {
	locks, err := r.ListLocks(ctx)
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	for _, l := range locks {
		if l.Kind != repo.LockExclusive || l.Purpose != "agent" || l.Stale(time.Now(), staleAfter) {
			continue
		}
		return &Holder{Host: l.Host, PID: l.PID, Since: l.Started, Refreshed: l.Refreshed,
			ThisProcess: l.Host == host && l.PID == os.Getpid()}, nil
	}
	return nil, nil
}
