package snapshot_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// standIn is a stand-in sharded cluster: test servers as shards, given
// by hand (--shard NAME=URI), and one playing the config server, which
// holds routing metadata written by the test.
type standIn struct {
	shards map[string]*testserver.Server
	cfg    *testserver.Server
	d      *source.Deployment
	repo   *repo.Repository
}

func startStandIn(t *testing.T, names ...string) *standIn {
	t.Helper()
	ctx := context.Background()
	c := &standIn{shards: map[string]*testserver.Server{}, cfg: testserver.Start(t)}
	if c.cfg.External() {
		t.Skip("a stand-in cluster needs test servers of its own (one per shard); against $REWIND_TEST_MONGODB_URI every server would be the same deployment")
	}
	in := cluster.Inputs{ConfigServer: c.cfg.URI()}
	for _, n := range names {
		c.shards[n] = testserver.Start(t)
		in.Shards = append(in.Shards, cluster.Shard{Name: n, URI: c.shards[n].URI()})
	}
	d, err := source.OpenDeployment(ctx, in)
	must(t, err)
	t.Cleanup(func() { d.Close(context.Background()) })
	c.d = d
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	c.repo, err = repo.Init(ctx, st, repo.InitOptions{Location: url, Source: d.Record()})
	must(t, err)
	return c
}

// writeRouting stores routing metadata on the stand-in config server, as
// mongos would: one sharded collection with a chunk per shard, a zone,
// and settings (the balancer's among them, which a snapshot leaves out).
func (c *standIn) writeRouting(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	cfgDB := c.cfg.Client().Database("config")
	db, _, _ := strings.Cut(ns, ".")
	docs := map[string][]any{
		"databases":   {bson.D{{Key: "_id", Value: db}, {Key: "primary", Value: "s0"}}},
		"collections": {bson.D{{Key: "_id", Value: ns}, {Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: false}}},
		"tags":        {bson.D{{Key: "_id", Value: "z1"}, {Key: "ns", Value: ns}, {Key: "tag", Value: "EU"}, {Key: "min", Value: bson.D{{Key: "_id", Value: 0}}}, {Key: "max", Value: bson.D{{Key: "_id", Value: 100}}}}},
		"settings": {bson.D{{Key: "_id", Value: "balancer"}, {Key: "mode", Value: "full"}, {Key: "stopped", Value: false}},
			bson.D{{Key: "_id", Value: "chunksize"}, {Key: "value", Value: 128}}},
	}
	for i, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range c.shards {
			if !yield(n) {
				return
			}
		}
	}) {
		docs["chunks"] = append(docs["chunks"], bson.D{{Key: "_id", Value: fmt.Sprintf("chunk%d", i)}, {Key: "ns", Value: ns},
			{Key: "min", Value: bson.D{{Key: "_id", Value: i * 1000}}}, {Key: "max", Value: bson.D{{Key: "_id", Value: (i + 1) * 1000}}}, {Key: "shard", Value: name}})
	}
	for coll, ds := range docs {
		_, err := cfgDB.Collection(coll).InsertMany(ctx, ds)
		must(t, err)
		t.Cleanup(func() { _ = cfgDB.Collection(coll).Drop(context.Background()) })
	}
}

// writeWhile inserts into every shard until stop is closed.
func (c *standIn) writeWhile(t *testing.T, stop chan struct{}) *sync.WaitGroup {
	var wg sync.WaitGroup
	for name, s := range c.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			coll := s.Client().Database(s.DB("live")).Collection("w")
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := coll.InsertOne(context.Background(), bson.D{{Key: "shard", Value: name}, {Key: "n", Value: i}}); err != nil {
					t.Errorf("write on %s: %v", name, err)
					return
				}
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return &wg
}

// seed inserts n documents into db.coll of every shard.
func (c *standIn) seed(t *testing.T, n int) {
	for name, s := range c.shards {
		var docs []any
		for i := range n {
			docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "shard", Value: name}})
		}
		_, err := s.Client().Database(s.DB("app")).Collection("c").InsertMany(context.Background(), docs)
		must(t, err)
	}
}

// A cluster snapshot of 3 stand-in shards with writes running on them:
// every part exists under its shard with the cluster's id, the cluster
// manifest names them all, T is the latest of the parts' ends, every
// shard's stored oplog holds every entry its server logged up to T, and
// the routing metadata is stored (without the balancer's settings).
func TestClusterSnapshot(t *testing.T) {
	c := startStandIn(t, "s0", "s1", "s2")
	ctx := context.Background()
	c.seed(t, 300)
	c.writeRouting(t, c.shards["s0"].DB("app")+".c")
	stop := make(chan struct{})
	wg := c.writeWhile(t, stop)
	m, err := snapshot.TakeCluster(ctx, c.d, c.repo, snapshot.ClusterOptions{Options: snapshot.Options{Parallel: 2, Log: testLogger(t)}})
	close(stop)
	wg.Wait()
	must(t, err)

	got, err := c.repo.ReadClusterManifest(ctx, m.ID)
	must(t, err)
	if want := []string{"config", "s0", "s1", "s2"}; !slices.Equal(got.Shards(), want) {
		t.Fatalf("cluster manifest names parts %v, want %v", got.Shards(), want)
	}
	var latest optime.Timestamp
	for _, p := range got.Parts {
		pm, err := c.repo.ReadManifest(ctx, p.Shard, got.ID)
		if err != nil {
			t.Fatalf("part of shard %s: %v", p.Shard, err)
		}
		if pm.Start != p.Start || pm.End != p.End {
			t.Errorf("part %s: manifest [%s, %s], cluster manifest says [%s, %s]", p.Shard, pm.Start, pm.End, p.Start, p.End)
		}
		if p.Shard != "config" && byName(pm)[c.shards[p.Shard].DB("app")+".c"].Count != 300 {
			t.Errorf("part %s holds %v", p.Shard, pm.Collections)
		}
		if p.End.After(latest) {
			latest = p.End
		}
		if p.CoveredThrough.Before(got.T) {
			t.Errorf("part %s is covered through %s, before T %s", p.Shard, p.CoveredThrough, got.T)
		}
	}
	if got.T != latest {
		t.Errorf("T is %s, want the latest part end %s", got.T, latest)
	}
	for name, s := range c.shards {
		p := got.Parts[slices.Index(got.Shards(), name)]
		assertStoredThrough(t, c.repo, s, name, p.Start, got.T)
	}
	rt := got.Routing
	if len(rt.Chunks) != 3 || len(rt.Databases) != 1 || len(rt.Collections) != 1 || len(rt.Tags) != 1 {
		t.Errorf("routing holds %d chunks, %d databases, %d collections, %d tags; want 3, 1, 1, 1",
			len(rt.Chunks), len(rt.Databases), len(rt.Collections), len(rt.Tags))
	}
	if len(rt.Settings) != 1 || rt.Settings[0].Lookup("_id").StringValue() != "chunksize" {
		t.Errorf("settings %v; want chunksize only (the balancer's state is not routing metadata)", rt.Settings)
	}
	if got.Balancer != repo.BalancerUnknown {
		t.Errorf("balancer %q without mongos, want %q", got.Balancer, repo.BalancerUnknown)
	}
}

// assertStoredThrough checks that every entry s's oplog holds in
// (start, t] is stored under shard.
func assertStoredThrough(t *testing.T, r *repo.Repository, s *testserver.Server, shard string, start, through optime.Timestamp) {
	t.Helper()
	ctx := context.Background()
	cur, err := s.Client().Database("local").Collection("oplog.rs").Find(ctx, bson.D{})
	must(t, err)
	var want []optime.Timestamp
	for cur.Next(ctx) {
		ns, _ := cur.Current.Lookup("ns").StringValueOK()
		tt, ti, _ := cur.Current.Lookup("ts").TimestampOK()
		ts := optime.Timestamp{T: tt, I: ti}
		if !strings.HasPrefix(ns, "local.") && ts.After(start) && !ts.After(through) {
			want = append(want, ts)
		}
	}
	must(t, cur.Err())
	segs, err := r.ListSegments(ctx, shard)
	must(t, err)
	stored := map[optime.Timestamp]bool{}
	must(t, r.ReadEntries(ctx, segs, start, func(ts optime.Timestamp, _ bson.Raw) error { stored[ts] = true; return nil }))
	for _, ts := range want {
		if !stored[ts] {
			t.Fatalf("shard %s: entry %s (at or before T %s) is not stored", shard, ts, through)
		}
	}
	if len(want) == 0 {
		t.Fatalf("shard %s logged nothing after %s: the writes did not run", shard, start)
	}
}

// Interrupted after every part is stored but before its cluster manifest,
// a cluster snapshot does not exist: no clusters/ object; the parts stay
// per-shard snapshots, which retention handles like any other.
func TestClusterSnapshotInterrupted(t *testing.T) {
	c := startStandIn(t, "s0", "s1", "s2")
	c.seed(t, 50)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := snapshot.ClusterOptions{Options: snapshot.Options{Log: testLogger(t)}}
	snapshot.SetAfterParts(&o, cancel)
	_, err := snapshot.TakeCluster(ctx, c.d, c.repo, o)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted cluster snapshot: %v, want context.Canceled", err)
	}
	ids, err := c.repo.ListClusterSnapshots(context.Background())
	must(t, err)
	if len(ids) != 0 {
		t.Fatalf("an interrupted cluster snapshot is listed: %v", ids)
	}
	parts, err := c.repo.ListSnapshots(context.Background(), "")
	must(t, err)
	if len(parts) != 4 {
		t.Fatalf("%d per-shard parts stored, want 4", len(parts))
	}
}
