// Package dashboard is the agent's web dashboard: a page and a small script,
// embedded in the binary (no CDN, works offline), that draw the timeline of
// restore windows, snapshots and gaps from the JSON API, show the capture's
// status and alerts, and start snapshots and restores (dry run first, then
// confirm) with live progress. The page holds no data itself: everything it
// shows comes from /api/v1 with the bearer token the user types once.
package dashboard

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"
)

//go:embed web
var files embed.FS

// Prefix is the path the dashboard's assets are served under.
const Prefix = "/ui/"

// Handler serves the dashboard: index.html at "/" and the assets under
// Prefix; a path that names no asset goes to notFound. Mount it on
// "GET /{$}" and "GET /ui/".
func Handler(notFound http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := "index.html"
		if r.URL.Path != "/" {
			name = strings.TrimPrefix(r.URL.Path, Prefix)
		}
		if st, err := fs.Stat(web, name); err != nil || st.IsDir() || name == "index.html" && r.URL.Path != "/" {
			notFound.ServeHTTP(w, r)
			return
		}
		serve(w, r, name)
	})
}

// FleetHandler serves rewind server's home page: every deployment, and
// the Enable backup form. Mount it on "GET /{$}".
func FleetHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, "fleet.html") })
}

// DeploymentHandler serves the agent's page for one deployment of rewind
// server: mounted on "GET /deployments/{name}/{$}", its script reads the
// deployment's API under /api/v1/deployments/{name}/.
func DeploymentHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, "index.html") })
}

// web is the embedded tree of pages and assets.
var web = func() fs.FS {
	sub, err := fs.Sub(files, "web")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}()

// serve answers one embedded file with the dashboard's headers.
func serve(w http.ResponseWriter, r *http.Request, name string) {
	h := w.Header()
	// Everything comes from this origin; no inline script, no framing.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	http.ServeFileFS(w, r, web, name)
}
