package oplog

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// On a source that cannot seek its oplog by ts (FerretDB), every poll used
// to read the whole oplog, so an idle agent kept the server busy in
// proportion to its oplog's size. Now a poll whose oplog mark is unchanged
// since the last complete read skips the read and still counts as caught
// up; a new write is read as before.
func TestIdlePollsSkipTheRead(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	ctx := context.Background()
	coll := srv.Client().Database(srv.DB("idle")).Collection("c")
	for i := range 50 {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "i", Value: i}, {Key: "pad", Value: strings.Repeat("x", 100)}}); err != nil {
			t.Fatal(err)
		}
	}
	plain, err := source.Connect(ctx, srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	if plain.Caps.SeekByTS || plain.Caps.ReliableTailableCursor {
		t.Skipf("%s is tailed or seeks by ts: its polls are not full reads", plain.Flavor)
	}
	newest, err := plain.NewestEntry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src, reads := counted(t, srv, plain)

	var caughtUp atomic.Int64
	var marked atomic.Pointer[optime.Timestamp]
	tl := &Tailer{Source: src, After: newest, Inclusive: true,
		CaughtUp: func(optime.Timestamp, time.Time) { caughtUp.Add(1) },
		Marked:   func(_ source.OplogMark, last optime.Timestamp) { marked.Store(&last) }}
	rctx, cancel := context.WithCancel(ctx)
	out := make(chan bson.Raw, 100)
	done := make(chan error, 1)
	go func() { done <- tl.Run(rctx, out) }()
	defer func() { cancel(); <-done }()

	// The first polls read: the one that passes the resume entry on, the
	// next (the last found entries, so it takes no mark), and the first
	// with a mark. Every later idle poll skips the read.
	waitFor(t, "4 polls", func() bool { return caughtUp.Load() >= 4 })
	if got := <-out; mustTS(t, got) != newest {
		t.Fatalf("first entry passed on %s, want the resume entry %s", mustTS(t, got), newest)
	}
	first := len(reads.Scans())
	if first > 3 {
		t.Fatalf("the first 4 polls read the oplog whole %d times, want at most 3:\n%s", first, strings.Join(reads.Scans(), "\n"))
	}
	polls := caughtUp.Load()
	waitFor(t, "6 more polls", func() bool { return caughtUp.Load() >= polls+6 })
	if n := len(reads.Scans()); n != first {
		t.Fatalf("6 polls of an idle oplog read it whole %d times, want none:\n%s", n-first, strings.Join(reads.Scans(), "\n"))
	}
	if m := marked.Load(); m == nil || *m != newest {
		t.Fatalf("the polls' mark names %v as the newest entry, want %s", m, newest)
	}

	if _, err := coll.InsertOne(ctx, bson.D{{Key: "i", Value: "new"}}); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-out:
		if !mustTS(t, e).After(newest) {
			t.Fatalf("after a write the tailer passed on %s, not after %s", mustTS(t, e), newest)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a write after idle polls was not read within 30 s")
	}
}

func mustTS(t *testing.T, e bson.Raw) optime.Timestamp {
	t.Helper()
	ts, err := optime.OfEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 30 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The agent's measurement of the oplog's edges (WatchSource) reads a
// FerretDB oplog whole only when its mark changed since the last one.
func TestMeasureReadsTheNewestOnlyAfterAChange(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	ctx := context.Background()
	coll := srv.Client().Database(srv.DB("measure")).Collection("c")
	insert := func(v any) {
		if _, err := coll.InsertOne(ctx, bson.D{{Key: "v", Value: v}}); err != nil {
			t.Fatal(err)
		}
	}
	insert(1)
	plain, err := source.Connect(ctx, srv.URI())
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close(ctx)
	if plain.Caps.SeekByTS {
		t.Skipf("%s seeks its oplog by ts: its newest entry is an index seek", plain.Flavor)
	}
	src, reads := counted(t, srv, plain)
	stats := &Stats{}
	for range 3 {
		measure(ctx, src, stats)
	}
	if n := len(reads.Scans()); n != 1 {
		t.Fatalf("3 measurements of an idle oplog read it whole %d times, want once", n)
	}
	insert(2)
	measure(ctx, src, stats)
	newest, err := plain.NewestEntry(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.SourceNewest(); got != newest || len(reads.Scans()) != 2 {
		t.Fatalf("after a write: measured newest %s (want %s), %d full reads (want 2)", got, newest, len(reads.Scans()))
	}
}

// counted is plain with a client of its own whose full oplog reads are
// counted (testserver.OplogReads).
func counted(t *testing.T, srv *testserver.Server, plain *source.Source) (*source.Source, *testserver.OplogReads) {
	t.Helper()
	mon, reads := testserver.CountOplogReads()
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMonitor(mon))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Disconnect(context.Background()) })
	src := *plain
	src.Client = c
	return &src, reads
}
