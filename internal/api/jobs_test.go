package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer is a log sink the job goroutines may write to concurrently.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A job's error is one clear line for the API and the dashboard; the log
// gets the whole of it: a panic's stack, a multi-line error's lines.
func TestJobErrorIsOneLine(t *testing.T) {
	var logged lockedBuffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	js := newJobs()
	boom := js.start(context.Background(), log, "restore", nil, func(context.Context) (any, error) { panic("index out of range [3]") })
	multi := js.start(context.Background(), log, "restore", nil, func(context.Context) (any, error) {
		return nil, errors.New("put object: 503 Service Unavailable\n<?xml version=\"1.0\"?>\n<Error>SlowDown</Error>\n")
	})
	js.wait(10 * time.Second)
	j, _ := js.get(boom.ID)
	if j.Error != "panic: index out of range [3] (a bug in rewind; the agent's log has the stack)" {
		t.Fatalf("panicking job's error %q, want one line naming the panic", j.Error)
	}
	if !strings.Contains(logged.String(), "goroutine") || !strings.Contains(logged.String(), "jobs_test.go") ||
		!strings.Contains(logged.String(), boom.ID) {
		t.Fatalf("the log lacks the panic's stack and job id:\n%s", logged.String())
	}
	j, _ = js.get(multi.ID)
	if j.Error != `put object: 503 Service Unavailable; <?xml version="1.0"?>; <Error>SlowDown</Error>` {
		t.Fatalf("multi-line error became %q, want its lines joined", j.Error)
	}
	if !strings.Contains(logged.String(), multi.ID) {
		t.Fatalf("the log lacks the failed job:\n%s", logged.String())
	}
}
