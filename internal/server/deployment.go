package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
)

// The states of a deployment in this process (the "state" of GET
// /api/v1/deployments).
const (
	// StateStarting: opening the repository, taking its lock, connecting.
	StateStarting = "starting"
	// StateCapturing: this process holds the repository and captures.
	StateCapturing = "capturing"
	// StateStandby: another process holds the repository's writer lock;
	// this one takes over when the lock goes stale.
	StateStandby = "standby"
	// StateWaiting: this process already captures max_deployments
	// deployments and leaves this one to its peers.
	StateWaiting = "waiting"
	// StateFailed: the last attempt failed; it is retried with backoff.
	StateFailed = "failed"
)

// Origins of a deployment.
const (
	OriginFile = "file" // declared in the server's file: read-only over the API
	OriginAPI  = "api"  // added with POST: kept in state_dir
)

// Backoff bounds the wait between failed attempts of one deployment.
const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
)

// deployment is one deployment supervised by this process: its own
// goroutine runs the agent, again and again, until it is removed.
type deployment struct {
	spec   config.Deployment
	origin string
	// docs are the request bodies an API deployment was made of (POST,
	// then each PATCH), replayed over the file's defaults at load.
	docs []json.RawMessage
	log  *slog.Logger

	cancel context.CancelFunc
	done   chan struct{}
	agent  atomic.Pointer[agent.Agent]
	alerts *alert.Reporter
	cache  summaryCache

	mu      sync.Mutex
	state   string
	err     string
	since   time.Time
	retryAt time.Time
	holder  *repo.LockInfo
}

// snapshotState is the deployment's state as the API shows it.
type stateView struct {
	State   string
	Error   string
	Since   time.Time
	RetryAt time.Time
	Holder  *repo.LockInfo
	Agent   *agent.Agent
}

func (d *deployment) view() stateView {
	d.mu.Lock()
	defer d.mu.Unlock()
	return stateView{State: d.state, Error: d.err, Since: d.since, RetryAt: d.retryAt, Holder: d.holder, Agent: d.agent.Load()}
}

func (d *deployment) set(state, errText string, retryAt time.Time, holder *repo.LockInfo) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.state != state {
		d.since = time.Now()
	}
	d.state, d.err, d.retryAt, d.holder = state, errText, retryAt, holder
}

// supervise runs the deployment's agent until ctx ends: a failure is
// retried with backoff and alerted (deployment_failed), a repository held
// by another process is waited for, and nothing here ever blocks the
// other deployments.
func (d *deployment) supervise(ctx context.Context, s *Server) {
	defer close(d.done)
	go d.alerts.Run(ctx)
	backoff := minBackoff
	for ctx.Err() == nil {
		if !s.slots.acquire(ctx, func() { d.set(StateWaiting, "", time.Time{}, nil) }) {
			return
		}
		started := time.Now()
		err := d.runOnce(ctx, s)
		s.slots.release()
		if ctx.Err() != nil {
			return
		}
		if time.Since(started) > maxBackoff {
			backoff = minBackoff // it ran a good while: a new failure starts over
		}
		wait := d.after(ctx, err, &backoff, s.lockRefresh())
		select {
		case <-ctx.Done():
		case <-time.After(wait):
		}
	}
}

// runOnce runs one agent until it stops.
func (d *deployment) runOnce(ctx context.Context, s *Server) error {
	// A failed deployment stays failed, its error shown, while it is
	// tried again: only a start clears it.
	if v := d.view(); v.State != StateFailed {
		d.set(StateStarting, "", time.Time{}, nil)
	}
	a := &agent.Agent{Config: d.spec.Config, Log: d.log, Version: s.Version, Deployment: d.spec.Name,
		Embedded: true, OnStarted: func() {
			d.set(StateCapturing, "", time.Time{}, nil)
			d.alerts.Report(time.Now(), alert.Condition{Alert: alert.DeploymentFailed, Severity: alert.Critical,
				Summary: fmt.Sprintf("deployment %s is captured again", d.spec.Name)})
		}}
	d.agent.Store(a)
	defer d.agent.Store(nil)
	err := a.Run(ctx)
	if err == nil && ctx.Err() == nil {
		err = errors.New("capture stopped")
	}
	return err
}

// after records why the agent stopped and returns how long to wait before
// the next attempt: one lock refresh when another process holds the
// repository, the backoff (then doubled) after a failure.
func (d *deployment) after(ctx context.Context, err error, backoff *time.Duration, refresh time.Duration) time.Duration {
	var le *repo.LockedError
	if errors.Is(err, repo.ErrNoRepository) {
		// Enabling backup creates the repository, as POST does.
		pctx, cancel := context.WithTimeout(ctx, prepareTimeout)
		_, err = agent.Prepare(pctx, d.spec.Config, "rewind server "+d.spec.Name)
		cancel()
		if err == nil {
			d.log.Info("created the repository", "repo", redact.URL(d.spec.Config.Repo))
			return 0
		}
	}
	if errors.As(err, &le) {
		h := le.Holder
		d.set(StateStandby, "", time.Now().Add(refresh), &h)
		d.alerts.Report(time.Now(), alert.Condition{Alert: alert.DeploymentFailed, Severity: alert.Critical,
			Summary: fmt.Sprintf("deployment %s is held by another process (%s pid %d)", d.spec.Name, h.Host, h.PID)})
		*backoff = minBackoff
		return refresh
	}
	wait := *backoff
	*backoff = min(2**backoff, maxBackoff)
	d.log.Error("deployment failed; retrying", "err", err, "retry_in", wait.String())
	d.set(StateFailed, err.Error(), time.Now().Add(wait), nil)
	d.alerts.Report(time.Now(), alert.Condition{Alert: alert.DeploymentFailed, Active: true, Severity: alert.Critical,
		Summary: fmt.Sprintf("deployment %s is not captured: %s", d.spec.Name, alert.OneLine(err.Error())),
		Details: map[string]any{"error": err.Error(), "retry_in_seconds": wait.Seconds()}})
	return wait
}

// stop ends the deployment's supervision and waits until its agent has
// flushed and released the repository.
func (d *deployment) stop() {
	d.cancel()
	<-d.done
	d.cache.close()
}
