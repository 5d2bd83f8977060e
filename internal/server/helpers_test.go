package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/server"
	"github.com/rewind-backup/rewind/internal/testserver"
)

const token = "fleet-token"

// header is a server file's top level for tests: fast flushes, lock and
// alert checks, a free port, the test token.
func header(stateDir string) string {
	return `api: {listen: "127.0.0.1:0", token: ` + token + `}
state_dir: ` + stateDir + `
lock: {refresh: 1s, stale_after: 3s}
capture: {flush_interval: 200ms}
alerts: {check_interval: 500ms, source_unreachable_for: 2s}
deployments:
`
}

// entry is one deployments: item capturing srv into a repository under dir.
func entry(name string, srv *testserver.Server, dir string) string {
	return "  - {name: " + name + ", source: '" + srv.URI() + "', repo: 'file://" + filepath.Join(dir, name) +
		"', capture: {spool_dir: '" + filepath.Join(dir, "spool-"+name) + "'}}\n"
}

// fleet is one rewind server run in-process by a test.
type fleet struct {
	t      *testing.T
	addr   string // the API's host:port
	s      *server.Server
	path   string
	cancel context.CancelFunc
	done   chan error
}

// startFleet writes the file and runs a server on it until the test ends.
func startFleet(t *testing.T, file string) *fleet {
	t.Helper()
	path := filepath.Join(t.TempDir(), "server.yaml")
	must(t, os.WriteFile(path, []byte(file), 0o600))
	cfg, err := config.LoadServer(path)
	must(t, err)
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := server.New(path, cfg, log, "test")
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	f := &fleet{t: t, s: s, path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { f.done <- s.Run(ctx) }()
	t.Cleanup(f.stop)
	waitFor(t, 30*time.Second, "the server listens", func() bool { return s.Addr() != "" })
	f.addr = s.Addr()
	return f
}

// stop ends the server and waits for it.
func (f *fleet) stop() {
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("server.Run: %v", err)
		}
		f.done <- nil // (a second stop returns at once)
	case <-time.After(90 * time.Second):
		f.t.Fatal("the server did not stop within 90 s")
	}
}

// answer is an API answer: its status, and the envelope's data or error.
type answer struct {
	Status int
	OK     bool            `json:"ok"`
	Data   json.RawMessage `json:"data"`
	Error  struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

func (f *fleet) do(method, path, body string) answer {
	f.t.Helper()
	req, err := http.NewRequest(method, "http://"+f.addr+path, strings.NewReader(body))
	must(f.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(f.t, err)
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, &a); err != nil && resp.Header.Get("Content-Type") == "application/json" {
		f.t.Fatalf("%s %s: %v\n%s", method, path, err, raw)
	}
	return a
}

// list is GET /api/v1/deployments, by name.
func (f *fleet) list() map[string]server.DeploymentView {
	f.t.Helper()
	a := f.do("GET", "/api/v1/deployments", "")
	if a.Status != http.StatusOK {
		f.t.Fatalf("GET /api/v1/deployments: %d %s", a.Status, a.raw)
	}
	var vs []server.DeploymentView
	must(f.t, json.Unmarshal(a.Data, &vs))
	out := map[string]server.DeploymentView{}
	for _, v := range vs {
		out[v.Name] = v
	}
	return out
}

// waitCapturing waits until each named deployment captures and has a
// restore window.
func (f *fleet) waitCapturing(within time.Duration, names ...string) {
	f.t.Helper()
	waitFor(f.t, within, "deployments "+strings.Join(names, ", ")+" capture", func() bool {
		l := f.list()
		for _, n := range names {
			if v, ok := l[n]; !ok || v.State != server.StateCapturing || v.RestoreWindow == nil {
				return false
			}
		}
		return true
	})
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %s", what, within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
