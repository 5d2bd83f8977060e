// Package server is `rewind server`: one process backing up many
// deployments. Each deployment runs the same agent as `rewind agent`,
// supervised on its own (a failing one is retried with backoff and
// alerted, and never touches the others). The repositories' writer locks
// decide which of several servers captures a deployment: the others stand
// by and take over when the holder's lock goes stale. The HTTP API lists
// and manages the deployments (/api/v1/deployments) and mounts each one's
// agent API under /api/v1/deployments/{name}/.
package server

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
)

// Server runs the deployments of one configuration file and those added
// over its API.
type Server struct {
	// Path is the configuration file, read again by Reload.
	Path    string
	Log     *slog.Logger
	Version string

	mu    sync.Mutex
	cfg   config.Server
	deps  map[string]*deployment
	slots *slots
	guard api.Guard
	// runCtx is Run's: deployments started later run under it.
	runCtx   context.Context
	stateDir string
	http     *httpServer
	regOnce  sync.Once
	reg      *prometheus.Registry
}

// New builds a server for cfg, read from path (config.LoadServer; the
// caller may override its api section, as from REWIND_API_TOKEN). Nothing
// connects yet.
func New(path string, cfg config.Server, log *slog.Logger, version string) (*Server, error) {
	guard, err := api.NewGuard(cfg.Defaults.API)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		path = abs // (GET /api/v1/server shows it; a reload reads it whatever the working directory)
	}
	s := &Server{Path: path, Log: log, Version: version, cfg: cfg, deps: map[string]*deployment{},
		slots: newSlots(cfg.MaxDeployments), guard: guard, stateDir: cfg.StateDir}
	if s.stateDir == "" {
		s.stateDir = config.StatePath("server")
	}
	return s, nil
}

// Run starts every deployment, serves the API on api.listen, and runs
// until ctx ends; then it stops every deployment (each flushes what it
// captured and releases its repository) and returns nil.
func (s *Server) Run(ctx context.Context) error {
	kept, err := loadState(s.stateDir)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.runCtx = ctx
	for _, d := range s.cfg.Deployments {
		s.startLocked(d, OriginFile, nil)
	}
	for _, k := range kept {
		s.restoreLocked(k)
	}
	s.mu.Unlock()
	if tok, _ := s.cfg.Defaults.API.ReadToken(); tok == "" && !s.cfg.Defaults.API.PublicRead {
		s.Log.Warn("the API has no token, so it refuses every request: set api.token or api.token_file (or REWIND_API_TOKEN) and restart")
	}
	s.Log.Info("server started", "deployments", len(s.deps), "max_deployments", s.cfg.MaxDeployments, "state_dir", s.stateDir)
	go s.syncState(ctx)
	err = s.serve(ctx)
	s.stopAll()
	return err
}

// restoreLocked starts an API deployment kept in the state file, over the
// file's current defaults. One the file now declares, or that no longer
// parses, is logged and skipped (its entry stays in the file).
func (s *Server) restoreLocked(k stored) {
	if _, ok := s.deps[k.Name]; ok {
		s.Log.Warn("a deployment added over the API is now declared in the file too: the file's wins", "deployment", k.Name)
		return
	}
	d, err := s.replay(k)
	if err != nil {
		s.Log.Error("a deployment kept in the state file no longer parses; fix it with PATCH, or DELETE it", "deployment", k.Name, "err", err)
		return
	}
	s.startLocked(d, OriginAPI, k.Docs)
}

// replay builds an API deployment from its request bodies.
func (s *Server) replay(k stored) (config.Deployment, error) {
	if len(k.Docs) == 0 {
		return config.Deployment{}, fmt.Errorf("deployment %q has no definition", k.Name)
	}
	d, err := s.cfg.ParseDeployment(k.Docs[0])
	for _, doc := range k.Docs[1:] {
		if err != nil {
			break
		}
		d, err = s.cfg.PatchDeployment(d, doc)
	}
	return d, err
}

// startLocked starts supervising a deployment. Callers hold s.mu.
func (s *Server) startLocked(spec config.Deployment, origin string, docs []json.RawMessage) {
	ctx, cancel := context.WithCancel(s.runCtx)
	log := s.Log.With("deployment", spec.Name)
	d := &deployment{spec: spec, origin: origin, docs: docs, log: log, cancel: cancel, done: make(chan struct{}),
		alerts: alert.NewReporter(spec.Config.Alerts, spec.Name, spec.Config.Source, s.Version, log)}
	d.set(StateStarting, "", time.Time{}, nil)
	s.deps[spec.Name] = d
	go d.supervise(ctx, s)
}

// stopAll stops every deployment at once and waits for them.
func (s *Server) stopAll() {
	s.mu.Lock()
	ds := make([]*deployment, 0, len(s.deps))
	for _, d := range s.deps {
		ds = append(ds, d)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, d := range ds {
		wg.Go(d.stop)
	}
	wg.Wait()
}

// Reload reads the file again and applies what changed: a deployment
// added starts, one removed stops, one changed restarts; the others run
// on untouched. The API deployments are rebuilt over the new defaults
// and restarted only when that changes them. A file with a mistake is
// refused as a whole and nothing changes.
func (s *Server) Reload(ctx context.Context) error {
	cfg, err := config.LoadServer(s.Path)
	if err != nil {
		return err
	}
	if cfg.MaxDeployments != s.cfg.MaxDeployments || cfg.Defaults.API != s.cfg.Defaults.API || cfg.StateDir != s.cfg.StateDir {
		s.Log.Warn("api, max_deployments and state_dir changes take effect at the next start")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.runCtx == nil {
		return fmt.Errorf("reload: the server is not running")
	}
	defaults := cfg.Defaults
	defaults.API, defaults.Lock = s.cfg.Defaults.API, s.cfg.Defaults.Lock
	s.cfg.Defaults, s.cfg.Deployments = defaults, cfg.Deployments
	want := map[string]config.Deployment{}
	for _, d := range cfg.Deployments {
		want[d.Name] = d
	}
	var stopped []*deployment
	for name, d := range s.deps {
		spec, inFile := want[name]
		switch {
		case d.origin == OriginFile && !inFile:
			stopped = append(stopped, s.removeLocked(name))
		case d.origin == OriginFile && !reflect.DeepEqual(spec, d.spec):
			stopped = append(stopped, s.removeLocked(name))
			s.Log.Info("deployment changed in the file: restarting it", "deployment", name)
		case d.origin == OriginAPI && inFile:
			s.Log.Warn("a deployment added over the API is now declared in the file too: the file's wins", "deployment", name)
			stopped = append(stopped, s.removeLocked(name))
		}
	}
	// Wait outside the lock for nothing: the stopped release their
	// repositories in the background while the new ones start.
	for _, d := range stopped {
		go d.stop()
	}
	for _, spec := range cfg.Deployments {
		if _, ok := s.deps[spec.Name]; !ok {
			s.startLocked(spec, OriginFile, nil)
		}
	}
	if kept, err := loadState(s.stateDir); err != nil {
		s.Log.Error("read the deployments added over the API failed", "err", err)
	} else {
		s.reconcileLocked(kept)
	}
	s.Log.Info("configuration reloaded", "deployments", len(s.deps))
	return nil
}

// syncState reads the state file every lock refresh and applies what
// other servers sharing the state_dir changed in it (added, changed or
// removed deployments), until ctx ends.
func (s *Server) syncState(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(s.lockRefresh()):
		}
		// Read under the lock that POST, PATCH and DELETE hold while they
		// save: a read taken before one of them saved and applied after it
		// would undo it (a removed deployment started again).
		s.mu.Lock()
		kept, err := loadState(s.stateDir)
		if err == nil {
			s.reconcileLocked(kept)
		}
		s.mu.Unlock()
		if err != nil {
			s.Log.Warn("read the deployments added over the API failed", "err", err)
		}
	}
}

// reconcileLocked makes the API deployments run here those of the state
// file: one it no longer lists stops, one whose definition (or the
// defaults under it) changed restarts, one not running starts unless the
// file declares its name.
func (s *Server) reconcileLocked(kept []stored) {
	listed := map[string]bool{}
	for _, k := range kept {
		listed[k.Name] = true
		d, running := s.deps[k.Name]
		switch {
		case !running:
			s.restoreLocked(k)
		case d.origin != OriginAPI:
		default:
			spec, err := s.replay(k)
			if err != nil {
				s.Log.Error("a deployment added over the API no longer parses: it runs on as it was", "deployment", k.Name, "err", err)
				continue
			}
			if !reflect.DeepEqual(spec, d.spec) {
				go s.removeLocked(k.Name).stop()
				s.startLocked(spec, OriginAPI, k.Docs)
			}
		}
	}
	for name, d := range s.deps {
		if d.origin == OriginAPI && !listed[name] {
			s.Log.Info("deployment removed from the state file (by another server?): stopping it", "deployment", name)
			go s.removeLocked(name).stop()
		}
	}
}

// removeLocked forgets a deployment; the caller stops it.
func (s *Server) removeLocked(name string) *deployment {
	d := s.deps[name]
	delete(s.deps, name)
	return d
}

// sorted returns the deployments by name.
func (s *Server) sorted() []*deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*deployment, 0, len(s.deps))
	for _, d := range s.deps {
		out = append(out, d)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].spec.Name < out[j].spec.Name })
	return out
}

func (s *Server) lockRefresh() time.Duration { return s.cfg.Defaults.Lock.Refresh.Std() }
