package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

const token = "s3cret-token"

// newRepo initializes an empty file repository and returns its URL.
func newRepo(t *testing.T) string {
	t.Helper()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	_, err = repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(t, err)
	return url
}

// agentConfig is an agent capturing srv into a new repository, serving
// the API on a free port with the test token.
func agentConfig(t *testing.T, srv *testserver.Server) config.Config {
	cfg := config.Default()
	cfg.Source = config.Secret(srv.URI())
	cfg.Repo = newRepo(t)
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	cfg.Snapshot.Every = 0 // snapshots only when the API asks
	cfg.API.Listen = "127.0.0.1:0"
	cfg.API.Token = token
	return cfg
}

// client talks to one in-process agent's API.
type client struct {
	t    *testing.T
	base string
	a    *agent.Agent
}

// startAgent runs an agent in-process until the test ends and waits for
// its API to listen.
func startAgent(t *testing.T, cfg config.Config) *client {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	a := &agent.Agent{Config: cfg, Log: log, HeartbeatEvery: 500 * time.Millisecond, Version: "test"}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("agent did not stop within 60 s")
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for a.APIAddr() == "" {
		select {
		case err := <-done:
			t.Fatalf("agent stopped before its API served: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent's API did not listen within 60 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return &client{t: t, base: "http://" + a.APIAddr(), a: a}
}

// answer is a decoded envelope.
type answer struct {
	Status int
	OK     bool            `json:"ok"`
	Data   json.RawMessage `json:"data"`
	Error  *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	raw string
}

// do sends a request (with the bearer token tok unless it is "") and
// decodes the envelope every API answer must be.
func (c *client) do(method, path, tok, body string) answer {
	c.t.Helper()
	req, err := http.NewRequest(method, c.base+path, strings.NewReader(body))
	must(c.t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	must(c.t, err)
	a := answer{Status: resp.StatusCode, raw: string(b)}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		c.t.Fatalf("%s %s: Content-Type %q, want application/json; body %s", method, path, ct, b)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		c.t.Fatalf("%s %s: the answer is not the envelope: %v\n%s", method, path, err, b)
	}
	if a.OK != (a.Error == nil) || (a.Status < 400) != a.OK {
		c.t.Fatalf("%s %s: status %d with envelope %s", method, path, a.Status, b)
	}
	return a
}

// get is an authorized GET that must succeed; it decodes data into v.
func (c *client) get(path string, v any) {
	c.t.Helper()
	a := c.do("GET", path, token, "")
	if a.Status != http.StatusOK {
		c.t.Fatalf("GET %s: %d %s", path, a.Status, a.raw)
	}
	must(c.t, json.Unmarshal(a.Data, v))
}

// wantError checks an answer is an error with this status and code, and a
// message containing each of words.
func wantError(t *testing.T, a answer, status int, code string, words ...string) {
	t.Helper()
	if a.Status != status || a.Error == nil || a.Error.Code != code {
		t.Fatalf("got %d %s, want %d with code %q", a.Status, a.raw, status, code)
	}
	for _, w := range words {
		if !strings.Contains(a.Error.Message, w) {
			t.Fatalf("error message %q does not say %q", a.Error.Message, w)
		}
	}
}

// runWorkload writes ops operations into databases named after part and
// records oracle marks if rec is not nil.
func runWorkload(t *testing.T, srv *testserver.Server, seed uint64, ops int, part string, rec *oracle.Recorder) workload.Config {
	t.Helper()
	cfg := srv.Workload(seed)
	cfg.Prefix = srv.DB(part)
	cfg.Ops, cfg.Databases, cfg.Collections = ops, 2, 2
	var onBatch workload.OnBatch
	if rec != nil {
		rec.Filter = oracle.Filter{Include: workload.Databases(cfg)}
		onBatch = rec.OnBatch
	}
	if _, err := workload.Run(context.Background(), srv.Client(), cfg, onBatch); err != nil {
		t.Fatalf("workload: %v", err)
	}
	return cfg
}

// waitFor polls cond every 100 ms until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
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
