package server

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/dashboard"
	"github.com/rewind-backup/rewind/internal/redact"
)

// httpServer is the bound listener, for Addr.
type httpServer struct {
	addr string
}

// Addr is the address the API listens on, "" until it serves.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.http == nil {
		return ""
	}
	return s.http.addr
}

// serve runs the HTTP API until ctx ends.
func (s *Server) serve(ctx context.Context) error {
	c := s.cfg.Defaults.API
	ln, err := api.Listen(c)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.http = &httpServer{addr: ln.Addr().String()}
	s.mu.Unlock()
	s.Log.Info("api listening", "addr", ln.Addr().String(), "tls", c.TLSCert != "", "public_read", c.PublicRead)
	return api.ServeHTTP(ctx, ln, s.Handler())
}

// Handler is the server's HTTP handler: the management API, each
// deployment's agent API under /api/v1/deployments/{name}/, the metrics
// of all of them, health, reload and the dashboard.
func (s *Server) Handler() http.Handler {
	g := s.guard.Wrap
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("rewind server is healthy\n"))
	})
	mux.HandleFunc("GET /-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("rewind server is ready\n"))
	})
	mux.HandleFunc("POST /-/reload", g(false, s.reload))
	mux.HandleFunc("GET /metrics", g(true, s.metrics))
	mux.HandleFunc("GET /api/v1/server", g(true, s.self))
	mux.HandleFunc("GET /api/v1/deployments", g(true, s.list))
	mux.HandleFunc("POST /api/v1/deployments", g(false, s.create))
	mux.HandleFunc("GET /api/v1/deployments/{name}", g(true, s.get))
	mux.HandleFunc("PATCH /api/v1/deployments/{name}", g(false, s.patch))
	mux.HandleFunc("DELETE /api/v1/deployments/{name}", g(false, s.remove))
	// The agent's own API checks the same token (its api section is the
	// server's).
	mux.HandleFunc("/api/v1/deployments/{name}/{rest...}", s.mount)
	ui := dashboard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "no such page: %s", r.URL.Path)
	}))
	mux.Handle("GET /{$}", dashboard.FleetHandler())
	mux.Handle("GET /deployments/{name}/{$}", http.StripPrefix("/deployments/", dashboard.DeploymentHandler()))
	mux.Handle("GET "+dashboard.Prefix, ui)
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "no such endpoint: %s %s; see docs/API.md", r.Method, r.URL.Path)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "no such endpoint: %s %s; the API is under /api/v1", r.Method, r.URL.Path)
	})
	return api.MethodNotAllowed(mux)
}

// mount passes /api/v1/deployments/{name}/REST to the deployment's agent
// API as /api/v1/REST. A deployment not captured here answers 503 naming
// the process that holds it.
func (s *Server) mount(w http.ResponseWriter, r *http.Request) {
	d := s.find(r.PathValue("name"))
	if d == nil {
		api.WriteError(w, http.StatusNotFound, api.CodeNotFound, "no deployment %q: GET /api/v1/deployments lists them", r.PathValue("name"))
		return
	}
	v := d.view()
	var h http.Handler
	if v.Agent != nil {
		h = v.Agent.Handler()
	}
	if h == nil {
		why := "it is " + v.State
		if v.Holder != nil {
			why = fmt.Sprintf("another process holds it (%s, host %s, pid %d): ask that one", v.Holder.Purpose, v.Holder.Host, v.Holder.PID)
		} else if v.Error != "" {
			why += ": " + v.Error
		}
		api.WriteError(w, http.StatusServiceUnavailable, api.CodeUnavailable, "deployment %q is not captured by this process; %s", d.spec.Name, why)
		return
	}
	r2 := r.Clone(r.Context())
	r2.URL.Path = "/api/v1/" + r.PathValue("rest")
	r2.URL.RawPath = ""
	h.ServeHTTP(w, r2)
}

// find returns the named deployment, nil when there is none.
func (s *Server) find(name string) *deployment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deps[name]
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	if err := s.Reload(r.Context()); err != nil {
		api.WriteError(w, http.StatusBadRequest, api.CodeBadRequest, "reload %s: %s; nothing changed", s.Path, strings.ReplaceAll(err.Error(), "\n", "; "))
		return
	}
	s.list(w, r)
}

// ServerView is GET /api/v1/server: this process and what it serves.
type ServerView struct {
	Host    string `json:"host"`
	PID     int    `json:"pid"`
	Version string `json:"version"`
	// ConfigFile is the file the deployments of origin "file" come from.
	ConfigFile string `json:"config_file"`
	// RepoPrefix is where a deployment added without a repo gets one
	// (PREFIX/NAME), "" when none; without credentials.
	RepoPrefix     string `json:"repo_prefix"`
	MaxDeployments int    `json:"max_deployments"`
	// Deployments counts them by this process's state.
	Deployments map[string]int `json:"deployments"`
	// Defaults are the schedule and retention a deployment gets when it
	// gives none (the file's top level).
	Defaults Settings `json:"defaults"`
}

func (s *Server) self(w http.ResponseWriter, _ *http.Request) {
	host, _ := os.Hostname()
	cfg := s.defaults()
	v := ServerView{Host: host, PID: os.Getpid(), Version: s.Version, ConfigFile: s.Path, RepoPrefix: redact.URL(cfg.RepoPrefix),
		MaxDeployments: cfg.MaxDeployments, Deployments: map[string]int{}, Defaults: settingsOf(cfg.Defaults)}
	if cfg.RepoPrefix == "" {
		v.RepoPrefix = ""
	}
	for _, d := range s.sorted() {
		v.Deployments[d.view().State]++
	}
	api.WriteData(w, http.StatusOK, v)
}
