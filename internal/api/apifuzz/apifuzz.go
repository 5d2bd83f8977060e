// Package apifuzz holds what the fuzz tests of rewind's HTTP APIs share
// (the agent's in internal/api, the management API in internal/server):
// building a request from fuzzed parts, sending it to a handler, and the
// promises every answer keeps whatever the input: no panic (the handler
// is called directly, so one fails the fuzz run), no hang past the
// request's deadline, no 500 without its cause in the log, every error under /api/ in the JSON envelope, and the
// API token never echoed back.
package apifuzz

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Methods are the HTTP methods a fuzzed request picks from.
var Methods = []string{"GET", "POST", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS"}

// Log is a logger whose output the checks read: a 500 must have logged an
// error.
type Log struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write implements io.Writer for slog.
func (l *Log) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// Logger is a text logger writing into l, at debug level.
func (l *Log) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// since returns what was logged after offset n, and the new offset.
func (l *Log) since(n int) (string, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buf.Bytes()
	if n > len(b) {
		n = len(b)
	}
	return string(b[n:]), len(b)
}

// Len is the log's length so far.
func (l *Log) Len() int {
	_, n := l.since(0)
	return n
}

// Input is one fuzzed request.
type Input struct {
	Method      byte   // index into Methods
	Path        string // the path and query, used as given after a leading "/"
	Body        []byte
	Auth        string // the Authorization header's value, "" for none
	ContentType string
}

// hangAfter is how long past its deadline a request may take to be
// answered before Do calls it a hang.
const hangAfter = 10 * time.Second

// Do sends in to h with a deadline of d (a request that would connect to
// a fuzzed host must not stall the run), then checks the answer against
// the promises above, and that it came within hangAfter of the deadline;
// token is the API's token, which no answer may hold.
func Do(t *testing.T, h http.Handler, log *Log, token string, in Input, d time.Duration) *httptest.ResponseRecorder {
	t.Helper()
	path := "/" + strings.TrimLeft(in.Path, "/")
	req, err := http.NewRequest(Methods[int(in.Method)%len(Methods)], "http://rewind.test"+path, bytes.NewReader(in.Body))
	if err != nil {
		return nil // not a request a client can send
	}
	if in.Auth != "" {
		req.Header.Set("Authorization", in.Auth)
	}
	if in.ContentType != "" {
		req.Header.Set("Content-Type", in.ContentType)
	}
	req.RemoteAddr = "192.0.2.1:4321"
	ctx, cancel := context.WithTimeout(req.Context(), d)
	defer cancel()
	before := log.Len()
	rec := httptest.NewRecorder()
	answered := make(chan struct{})
	go func() {
		defer close(answered)
		h.ServeHTTP(rec, req.WithContext(ctx))
	}()
	select {
	case <-answered:
	case <-time.After(d + hangAfter):
		t.Fatalf("%s %s: no answer %s after its deadline", req.Method, req.URL, hangAfter)
	}
	logged, _ := log.since(before)
	Check(t, req, rec, logged, token)
	return rec
}

// Check holds one answer to the promises; logged is what the handler
// logged while answering.
func Check(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder, logged, token string) {
	t.Helper()
	what := req.Method + " " + req.URL.String()
	body := rec.Body.String()
	if rec.Code == http.StatusInternalServerError && !strings.Contains(logged, "level=ERROR") {
		t.Fatalf("%s: 500 with no error logged:\n%s\nlog:\n%s", what, body, logged)
	}
	if token != "" && strings.Contains(body, token) {
		t.Fatalf("%s: the answer holds the API token:\n%s", what, body)
	}
	if rec.Code < 400 || !strings.HasPrefix(req.URL.Path, "/api/") || req.Method == "HEAD" {
		return
	}
	var env struct {
		OK    *bool `json:"ok"`
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.OK == nil || *env.OK || env.Error == nil ||
		env.Error.Code == "" || env.Error.Message == "" {
		t.Fatalf("%s: %d is not an error envelope (%v):\n%s", what, rec.Code, err, body)
	}
}
