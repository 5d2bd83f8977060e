package snapshot_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// countingSource is e.src with a client of its own whose oplog reads are
// counted: what a snapshot through it costs the source.
func countingSource(t *testing.T, e *env) (*source.Source, *testserver.OplogReads) {
	t.Helper()
	mon, reads := testserver.CountOplogReads()
	c, err := mongo.Connect(options.Client().ApplyURI(e.srv.URI()).SetMonitor(mon))
	must(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = c.Disconnect(ctx)
	})
	src := *e.src
	src.Client = c
	return &src, reads
}

func skipWhereOplogSeeks(t *testing.T, src *source.Source) {
	t.Helper()
	if src.Caps.SeekByTS {
		t.Skipf("%s seeks its oplog by ts: its newest entry and a read after a point are index seeks, so their number costs nothing; the count is for a source where each reads the whole oplog (FerretDB)", src.Flavor)
	}
}

func assertReads(t *testing.T, reads *testserver.OplogReads, most int, what string) {
	t.Helper()
	if scans := reads.Scans(); len(scans) > most {
		t.Fatalf("%s read the whole oplog %d times, want at most %d:\n%s", what, len(scans), most, strings.Join(scans, "\n"))
	}
}

// A snapshot with no writes during its copy reads a FerretDB oplog once,
// while it copies, and its range is the newest entry alone: the last write
// before the snapshot is a restore point, with nothing to replay.
func TestQuietSnapshotReadsOplogOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.workload(34, 80, "q")
	src, reads := countingSource(t, e)
	skipWhereOplogSeeks(t, src)
	newest, err := e.src.NewestEntry(ctx) // not counted
	must(t, err)
	m, err := snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if m.Start != newest || m.End != newest {
		t.Fatalf("quiet snapshot: range [%s, %s], want [%s, %s] (the last write)", m.Start, m.End, newest, newest)
	}
	assertCovered(t, e, m.Shard, m.Start, m.End)
	cat, err := catalog.Load(ctx, e.repo)
	must(t, err)
	found := false
	for _, sh := range cat.Shards {
		for _, w := range sh.Windows {
			found = found || w.Snapshot == m.ID && w.From == newest
		}
	}
	if !found {
		t.Fatalf("the quiet snapshot %s opens no restore window at the last write %s: %+v", m.ID, newest, cat.Shards)
	}
	assertReads(t, reads, 1, "a quiet snapshot")
}

// A write during the copy changes the oplog: the snapshot then reads it a
// second time, after the copy, to store the writes to replay, and its range
// holds them.
func TestSnapshotWithWritesReadsOplogTwice(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.workload(31, 200, "s")
	src, reads := countingSource(t, e)
	skipWhereOplogSeeks(t, src)
	p, written := writeDuringCopy(t, e)
	m, err := snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, Progress: p, Log: testLogger(t)})
	must(t, err)
	assertHolds(t, m, written())
	assertCovered(t, e, m.Shard, m.Start, m.End)
	assertReads(t, reads, 2, "a snapshot with a write during its copy")
}

// A second snapshot into the same repository, with no writes since the
// first, continues the first's timeline without reading the oplog again:
// the entry is stored already, and proving the source is the one it came
// from (oplog.ErrOtherHistory) is an _id lookup.
func TestRepeatSnapshotReadsOplogOnce(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.workload(35, 100, "r")
	first, err := e.take(snapshot.Options{Parallel: 2})
	must(t, err)
	src, reads := countingSource(t, e)
	skipWhereOplogSeeks(t, src)
	m, err := snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if m.Start != first.End || m.End != first.End {
		t.Fatalf("second quiet snapshot: range [%s, %s], want [%s, %s]", m.Start, m.End, first.End, first.End)
	}
	assertCovered(t, e, m.Shard, first.Start, m.End)
	assertReads(t, reads, 1, "a second quiet snapshot")

	e.workload(36, 50, "r2")
	src, reads = countingSource(t, e)
	newest, err := e.src.NewestEntry(ctx)
	must(t, err)
	m, err = snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, Log: testLogger(t)})
	must(t, err)
	if m.End != newest {
		t.Fatalf("third snapshot ends at %s, want the newest entry %s", m.End, newest)
	}
	assertCovered(t, e, m.Shard, first.Start, m.End)
	assertReads(t, reads, 2, "a snapshot after writes since the last one")
}

// writeDuringCopy returns a snapshot progress whose first chunk makes one
// insert, and what returns that insert's oplog timestamp once the
// snapshot has ended.
func writeDuringCopy(t *testing.T, e *env) (*snapshot.Progress, func() optime.Timestamp) {
	t.Helper()
	ctx := context.Background()
	coll := e.srv.Client().Database(e.srv.DB("during")).Collection("c")
	var once sync.Once
	var written bson.Raw
	p := &snapshot.Progress{OnChunk: func() {
		once.Do(func() {
			_, err := coll.InsertOne(ctx, bson.D{{Key: "n", Value: 1}})
			must(t, err)
			written, err = e.src.Oplog().FindOne(ctx, bson.D{{Key: "ns", Value: coll.Database().Name() + ".c"}}).Raw()
			must(t, err)
		})
	}}
	return p, func() optime.Timestamp {
		t.Helper()
		if written == nil {
			t.Fatal("the test wrote nothing during the copy")
		}
		w, err := optime.OfEntry(written)
		must(t, err)
		return w
	}
}

// assertHolds checks that m's range holds the entry at w.
func assertHolds(t *testing.T, m repo.Manifest, w optime.Timestamp) {
	t.Helper()
	if !m.Start.Before(w) || m.End.Before(w) {
		t.Fatalf("the range [%s, %s] does not hold the write made during the copy (%s)", m.Start, m.End, w)
	}
}

// Another deployment's quiet snapshot into this repository is refused
// (oplog.ErrOtherHistory), as the range capture refuses a busy one: its
// newest entry lies within the stored timeline, which would otherwise
// cover its range and replay this deployment's writes onto its data. So
// is an empty deployment's.
func TestQuietSnapshotOfAnotherDeploymentIsRefused(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	if e.srv.External() {
		t.Skip("needs two deployments: $REWIND_TEST_MONGODB_URI names one")
	}
	other := testserver.Start(t)
	empty := testserver.Start(t)
	insert := func(s *testserver.Server, v int) {
		t.Helper()
		_, err := s.Client().Database(s.DB("o")).Collection("c").InsertOne(ctx, bson.D{{Key: "v", Value: v}})
		must(t, err)
	}
	insert(e.srv, 1)
	_, err := e.take(snapshot.Options{Parallel: 2})
	must(t, err)
	nextSecond(t, e.src)
	insert(other, 1) // the other deployment's newest entry: inside this timeline-to-be
	nextSecond(t, e.src)
	insert(e.srv, 2)
	_, err = e.take(snapshot.Options{Parallel: 2})
	must(t, err)
	for name, s := range map[string]*testserver.Server{"another deployment": other, "an empty deployment": empty} {
		src, err := source.Connect(ctx, s.URI())
		must(t, err)
		defer src.Close(ctx)
		m, err := snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, Log: testLogger(t)})
		if !errors.Is(err, oplog.ErrOtherHistory) {
			t.Errorf("snapshot of %s into this repository: range [%s, %s], error %v; want ErrOtherHistory", name, m.Start, m.End, err)
		}
	}
}

// nextSecond waits until the server's clock is in a later second than now,
// so the next entry's timestamp sorts after every earlier one's second.
func nextSecond(t *testing.T, src *source.Source) {
	t.Helper()
	ctx := context.Background()
	now, err := src.ClockTimestamp(ctx)
	must(t, err)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := src.ClockTimestamp(ctx)
		must(t, err)
		if c.T > now.T {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server's clock did not pass %s within 10 s", now)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
