package oplog_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A source that answers pings at once but takes longer than the stall
// bound to answer the oplog request is slow, not gone: the tailer lets it
// take longer and reads the whole oplog. Here the slow request is real:
// FerretDB scans its whole oplog for every query, and the bound is a
// quarter of what that scan takes. With a fixed bound every attempt
// stalls and not one entry is ever read (the soak saw capture fall minutes
// behind that way on an overloaded test server).
func TestTailerAllowsASlowSource(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	if !srv.FerretDB() {
		t.Skip("needs a source whose oplog query is slow: FerretDB scans its oplog for every query, MongoDB seeks by ts")
	}
	ctx := context.Background()
	coll := srv.Client().Database(srv.DB("slow")).Collection("c")
	for range 20 {
		docs := make([]any, 500)
		for i := range docs {
			docs[i] = bson.D{{Key: "pad", Value: strings.Repeat("x", 200)}}
		}
		if _, err := coll.InsertMany(ctx, docs); err != nil {
			t.Fatal(err)
		}
	}
	src, err := source.Connect(ctx, srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	total, err := src.Oplog().CountDocuments(ctx, bson.D{})
	if err != nil {
		t.Fatal(err)
	}

	// What the tailer's first answer costs (the cheaper of two runs with
	// the default bound), and a quarter of it as the bound.
	cost := time.Hour
	for range 2 {
		cost = min(cost, firstEntryAfter(t, src, oplog.DefaultStallTimeout))
	}
	bound := max(cost/4, time.Millisecond)
	t.Logf("the tailer's first answer over %d entries takes %s; stall bound %s", total, cost, bound)

	var logs lockedBuffer
	tail := &oplog.Tailer{Source: src, FromStart: true, StallTimeout: bound, Retry: 100 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(&logs, nil))}
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out := make(chan bson.Raw, 1024)
	go func() { _ = tail.Run(rctx, out) }()
	read := int64(0)
	for read < total {
		select {
		case <-out:
			read++
		case <-rctx.Done():
			t.Fatalf("the tailer read %d of the oplog's %d entries in a minute; its log:\n%s", read, total, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "allowing it longer") {
		t.Fatalf("the whole oplog was read, but the bound never grew: the test did not make the source slow; log:\n%s", logs.String())
	}
}

// firstEntryAfter is how long a tailer reading the oplog from its start
// with the stall bound d takes to pass on its first entry.
func firstEntryAfter(t *testing.T, src *source.Source, d time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out := make(chan bson.Raw, 1)
	began := time.Now()
	go func() { _ = (&oplog.Tailer{Source: src, FromStart: true, StallTimeout: d}).Run(ctx, out) }()
	select {
	case <-out:
		return time.Since(began)
	case <-ctx.Done():
		t.Fatal("the tailer passed on no entry in a minute")
		return 0
	}
}

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
