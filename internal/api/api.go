// Package api is the agent's HTTP server: the JSON API under /api/v1 (status,
// timeline, snapshots, jobs, alerts, snapshot and restore requests), the health
// endpoints /-/healthy and /-/ready, and Prometheus metrics on /metrics
// through an explicit registry. Every /api/v1 answer, errors included, is one
// JSON envelope: {"ok": true, "data": ...} or {"ok": false, "error": {...}}.
package api

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/runs"
	"github.com/rewind-backup/rewind/internal/source"
)

// Deps are the parts of a running agent the server reads and drives.
type Deps struct {
	Config config.API
	Repo   *repo.Repository
	Source *source.Source
	Shard  string
	Stats  *oplog.Stats
	Spool  *oplog.Spool
	// Units are every shard's capture, for the metrics' shard label (a
	// sharded cluster's shards and config server); empty: the one of
	// Shard, Stats and Spool.
	Units   []Unit
	Version string
	// SnapshotParallel is snapshot.parallel, used by POST /api/v1/snapshots.
	SnapshotParallel int
	// Runs records every snapshot and prune run (the API's own snapshots
	// too); the metrics count them.
	Runs *runs.Recorder
	// Alerts is the agent's alert monitor, for GET /api/v1/alerts and
	// rewind_alerts_firing (nil: none).
	Alerts *alert.Monitor
	Log    *slog.Logger
}

// Unit is one shard's capture as the metrics see it.
type Unit struct {
	Shard string
	Stats *oplog.Stats
	Spool *oplog.Spool
}

// Server serves the API. Create it with New, start it with Run.
type Server struct {
	d       Deps
	guard   Guard
	jobs    *jobs
	metrics *metrics
	handler http.Handler

	mu   sync.Mutex
	addr string
	// runCtx is Run's context: background jobs stop with the server.
	runCtx context.Context
}

// New checks the configuration (reading api.token_file) and builds the server.
func New(d Deps) (*Server, error) {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Runs == nil {
		d.Runs = &runs.Recorder{}
	}
	guard, err := NewGuard(d.Config)
	if err != nil {
		return nil, err
	}
	s := &Server{d: d, guard: guard, jobs: newJobs(), runCtx: context.Background()}
	s.metrics = newMetrics(d)
	s.handler = s.routes()
	return s, nil
}

// Handler is the server's HTTP handler (for tests and embedding).
func (s *Server) Handler() http.Handler { return s.handler }

// Addr is the address the server listens on, "" until Run has bound it.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Run listens on api.listen (with TLS when tls_cert and tls_key are set) and
// serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	ln, err := Listen(s.d.Config)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.addr = ln.Addr().String()
	s.runCtx = ctx // (Serve sets it too, but requests may come first)
	s.mu.Unlock()
	s.d.Log.Info("api listening", "addr", s.addr, "tls", s.d.Config.TLSCert != "", "public_read", s.d.Config.PublicRead)
	served := make(chan struct{})
	go func() {
		defer close(served)
		s.Serve(ctx)
	}()
	defer func() { <-served }()
	return ServeHTTP(ctx, ln, s.handler)
}

// Listen opens api.listen, with TLS when api.tls_cert and tls_key are set.
// Its errors say what to change.
func Listen(c config.API) (net.Listener, error) {
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on api.listen %s: %w; choose a free address", c.Listen, err)
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("load api.tls_cert and api.tls_key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return ln, nil
}

// ServeHTTP serves h on ln until ctx ends, then shuts down gracefully
// (requests in flight get 5 s).
func ServeHTTP(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("shut down api: %w", err)
	}
	return nil
}

// Serve runs the server's background work without a listener of its own,
// for a caller that mounts Handler (rewind server mounts one per
// deployment): jobs started through the handler run under ctx. It returns
// once ctx has ended and the jobs have stopped (at most 10 s later).
func (s *Server) Serve(ctx context.Context) {
	s.mu.Lock()
	s.runCtx = ctx
	s.mu.Unlock()
	go s.metrics.seedLastSnapshot(ctx, s.d)
	go s.metrics.drills.seed(ctx, s.d)
	<-ctx.Done()
	s.jobs.wait(10 * time.Second)
}

// AddUnit exposes the metrics of a shard whose capture started after the
// server did (a shard that joined the cluster). A shard already exposed
// is left as it is.
func (s *Server) AddUnit(u Unit) { s.metrics.addUnit(u) }

// Gatherer is the server's Prometheus registry: the agent's metrics, the
// Go runtime's and the process's.
func (s *Server) Gatherer() prometheus.Gatherer { return s.metrics.reg }

func (s *Server) jobContext() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.runCtx
}
