package api

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/rewind-backup/rewind/internal/dashboard"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("rewind agent is healthy\n"))
	})
	mux.HandleFunc("GET /-/ready", s.ready)
	metrics := promhttp.HandlerFor(s.metrics.reg, promhttp.HandlerOpts{ErrorLog: nil})
	mux.HandleFunc("GET /metrics", s.auth(true, metrics.ServeHTTP))

	mux.HandleFunc("GET /api/v1/status", s.auth(true, s.status))
	mux.HandleFunc("GET /api/v1/timeline", s.auth(true, s.timeline))
	mux.HandleFunc("GET /api/v1/snapshots", s.auth(true, s.snapshots))
	mux.HandleFunc("GET /api/v1/jobs", s.auth(true, s.listJobs))
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.auth(true, s.getJob))
	mux.HandleFunc("POST /api/v1/snapshots", s.auth(false, s.takeSnapshot))
	mux.HandleFunc("POST /api/v1/restores", s.auth(false, s.startRestore))
	mux.HandleFunc("GET /api/v1/restores/{id}", s.auth(true, s.jobOf("restore")))
	mux.HandleFunc("POST /api/v1/undos", s.auth(false, s.startUndo))
	mux.HandleFunc("GET /api/v1/undos/{id}", s.auth(true, s.jobOf("undo")))
	// These answer the documents themselves: they need the token even
	// with api.public_read.
	mux.HandleFunc("GET /api/v1/oplog", s.auth(false, s.oplog))
	mux.HandleFunc("GET /api/v1/history", s.auth(false, s.history))
	mux.HandleFunc("GET /api/v1/export", s.auth(false, s.export))
	mux.HandleFunc("GET /api/v1/audit", s.auth(false, s.audit))
	mux.HandleFunc("GET /api/v1/alerts", s.auth(true, s.alerts))
	mux.HandleFunc("GET /api/v1/drills", s.auth(true, s.drills))
	// The dashboard's page and assets hold no data: they need no token.
	ui := dashboard.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such page: %s", r.URL.Path)
	}))
	mux.Handle("GET /{$}", ui)
	mux.Handle("GET "+dashboard.Prefix, ui)
	// Everything else under the API answers in the envelope too.
	mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s; see docs/API.md", r.Method, r.URL.Path)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, http.StatusNotFound, CodeNotFound, "no such endpoint: %s %s; the API is under /api/v1", r.Method, r.URL.Path)
	})
	return MethodNotAllowed(mux)
}

// MethodNotAllowed rewrites the mux's plain-text 405 into the envelope:
// wrap every mux of the API with it.
func MethodNotAllowed(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, pattern := mux.Handler(r)
		if (pattern == "" || pattern == "/" || pattern == "/api/") && probeAllow(mux, r) {
			WriteError(w, http.StatusMethodNotAllowed, CodeNotAllowed, "%s is not allowed on %s; see docs/API.md", r.Method, r.URL.Path)
			return
		}
		mux.ServeHTTP(w, r) // (not the handler found above: it sets the path values)
	})
}

// probeAllow reports whether the path exists for another method.
func probeAllow(mux *http.ServeMux, r *http.Request) bool {
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete} {
		if m == r.Method {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = m
		if _, p := mux.Handler(probe); p != "" && p != "/" && p != "/api/" {
			return true
		}
	}
	return false
}

// ready answers 200 when the source answers and the repository can be
// listed, 503 with the reason otherwise.
func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if err := s.d.Source.Client.Ping(ctx, nil); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: source unreachable: " + err.Error() + "\n"))
		return
	}
	if _, err := s.d.Repo.Shards(ctx); err != nil {
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("not ready: repository unreachable: " + err.Error() + "\n"))
		return
	}
	_, _ = w.Write([]byte("rewind agent is ready\n"))
}
