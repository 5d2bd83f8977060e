package snapshot_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A snapshot taken while the workload writes spans start < end, and the
// oplog between them is in the repository.
func TestSnapshotDuringWorkload(t *testing.T) {
	e := newEnv(t)
	cfg := e.workload(2, 200, "w")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		live := cfg
		live.KeepData, live.Ops, live.Seed = true, 0, 3
		live.Prefix = e.srv.DB("w2")
		live.Rate, live.Duration = 100, 10*time.Minute
		_, err := workload.Run(ctx, e.srv.Client(), live, nil)
		done <- err
	}()
	time.Sleep(time.Second)
	m, err := e.take(snapshot.Options{Parallel: 2, ChunkBytes: 64 << 10})
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("workload: %v", err)
	}
	must(t, err)
	if !m.Start.Before(m.End) {
		t.Fatalf("start %s is not before end %s while the workload wrote", m.Start, m.End)
	}
	assertCovered(t, e, m.Shard, m.Start, m.End)
}

// A snapshot cancelled mid-copy leaves no manifest; its chunks are all under
// its own data prefix; a re-run works.
func TestInterruptedSnapshot(t *testing.T) {
	e := newEnv(t)
	e.workload(4, 300, "i", func(c *workload.Config) { c.LargeEvery = 10 })
	ctx, cancel := context.WithCancel(context.Background())
	var chunks atomic.Int64
	p := &snapshot.Progress{OnChunk: func() {
		if chunks.Add(1) == 3 {
			cancel()
		}
	}}
	_, err := snapshot.Take(ctx, e.src, e.repo, snapshot.Options{Parallel: 2, ChunkBytes: 32 << 10, Progress: p, Log: testLogger(t)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled snapshot returned %v, want context.Canceled", err)
	}
	bg := context.Background()
	snaps, err := e.repo.ListSnapshots(bg, "")
	must(t, err)
	if len(snaps) != 0 {
		t.Fatalf("an interrupted snapshot is listed: %v", snaps)
	}
	prefixes := map[string]bool{}
	must(t, e.repo.Store().List(bg, "data/", func(i storage.Info) error {
		parts := strings.Split(i.Key, "/")
		prefixes[strings.Join(parts[:3], "/")] = true
		return nil
	}))
	if len(prefixes) != 1 {
		t.Fatalf("orphaned chunks are under %v, want one snapshot's data prefix", prefixes)
	}
	m, err := e.take(snapshot.Options{Parallel: 2, ChunkBytes: 32 << 10})
	must(t, err)
	snaps, err = e.repo.ListSnapshots(bg, "")
	must(t, err)
	if len(snaps) != 1 || snaps[0].ID != m.ID {
		t.Fatalf("after a re-run ListSnapshots = %v, want %s", snaps, m.ID)
	}
	for old := range prefixes {
		if strings.HasSuffix(old, "/"+m.ID) {
			t.Fatalf("the re-run reused the interrupted snapshot's id %s", m.ID)
		}
	}
}

// Filters select databases and collections (dotted names included);
// options, indexes and views are recorded; a split collection is copied
// exactly.
func TestFiltersMetadataAndSplit(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.srv.Client()
	shop, logs, other := e.srv.DB("shop"), e.srv.DB("logs"), e.srv.DB("other")
	must(t, c.Database(shop).CreateCollection(ctx, "capped", options.CreateCollection().SetCapped(true).SetSizeInBytes(1<<20)))
	_, err := c.Database(shop).Collection("orders").Indexes().CreateOne(ctx, mongoIndex("by_customer", "customer"))
	must(t, err)
	var docs []any
	for i := range 3000 {
		docs = append(docs, bson.D{{Key: "_id", Value: int32(i)}, {Key: "customer", Value: i % 17}, {Key: "pad", Value: strings.Repeat("x", 200)}})
	}
	_, err = c.Database(shop).Collection("orders").InsertMany(ctx, docs)
	must(t, err)
	for _, ns := range [][2]string{{shop, "sessions"}, {shop, "capped"}, {logs, "a.b"}, {logs, "a"}, {other, "c"}} {
		_, err := c.Database(ns[0]).Collection(ns[1]).InsertOne(ctx, bson.D{{Key: "k", Value: ns[1]}})
		must(t, err)
	}
	viewErr := c.Database(shop).CreateView(ctx, "big_orders", "orders", bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "customer", Value: 3}}}}})
	if viewErr != nil && !e.srv.FerretDB() {
		t.Fatalf("create view: %v", viewErr)
	}

	f, err := snapshot.ParseFilter([]string{shop + ".*", logs + ".a.b"}, []string{shop + ".sessions"})
	must(t, err)
	p := &snapshot.Progress{}
	m, err := e.take(snapshot.Options{Filter: f, Parallel: 3, ChunkBytes: 64 << 10, SplitBytes: 100 << 10, Progress: p})
	must(t, err)
	got := byName(m)
	want := []string{shop + ".orders", shop + ".capped", logs + ".a.b"}
	if len(got) != len(want) {
		t.Fatalf("snapshot holds %v, want %v", keys(got), want)
	}
	for _, ns := range want {
		cm, ok := got[ns]
		if !ok {
			t.Fatalf("snapshot lacks %s; holds %v", ns, keys(got))
		}
		db, coll, _ := strings.Cut(ns, ".")
		assertSameDocs(t, ns, snapshotDocs(t, e.repo, cm), sourceDocs(t, c, db, coll))
	}
	if capped, _ := got[shop+".capped"].Options.Lookup("capped").BooleanOK(); !capped {
		t.Errorf("capped collection's options not recorded: %s", got[shop+".capped"].Options)
	}
	if !strings.Contains(indexNames(got[shop+".orders"].Indexes), "by_customer") {
		t.Errorf("index by_customer not recorded: %v", got[shop+".orders"].Indexes)
	}
	if n := p.Parts(); n < 5 {
		t.Errorf("the copy had %d parts; want orders (~700 KiB, parts of 100 KiB) split", n)
	}
	if viewErr == nil {
		if len(m.Views) != 1 || m.Views[0].Name != "big_orders" {
			t.Errorf("views = %v, want big_orders", m.Views)
		}
	} else {
		t.Logf("the server cannot create views (%v): view recording is not exercised here", viewErr)
	}
}
