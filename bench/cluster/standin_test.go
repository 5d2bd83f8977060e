package clusterbench

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// collsPerShard is how many collections each shard's data set has.
const collsPerShard = 4

// parallel is --parallel everywhere: the cluster snapshot's copy slots
// (shared by its parts), each shard's snapshot alone, the restore and the
// ceiling's insert workers.
const parallel = 4

// shardMB is each stand-in shard's data size in MiB:
// $REWIND_BENCH_SHARD_MB, default 64 (the size; FerretDB loads and
// copies a few MB/s, so 16 is the quick run).
func shardMB() int { return benchtool.EnvInt("REWIND_BENCH_SHARD_MB", 64) }

// standIn is a stand-in sharded cluster: test servers as shards s0, s1...
// and one playing the config server, whose config.shards documents point
// at them. Each shard holds its own database (the server's DB("bench"))
// of collsPerShard collections, different documents on every shard.
type standIn struct {
	cfg    *testserver.Server
	shards []*testserver.Server
	names  []string
	// data are each shard's batches as loaded, for the ceiling.
	data        [][]benchtool.Batch
	docs        int
	size        int64 // bytes of BSON over all shards
	loadElapsed time.Duration
}

// startStandIn starts n shards of mb MiB each and the config server.
func startStandIn(b *testing.B, n, mb int) *standIn {
	b.Helper()
	c := &standIn{cfg: testserver.Start(b)}
	if c.cfg.External() {
		b.Skip("a stand-in cluster needs test servers of its own (one per shard); against $REWIND_TEST_MONGODB_URI every server would be the same deployment")
	}
	t0 := time.Now()
	for i := range n {
		s := testserver.Start(b)
		name := fmt.Sprintf("s%d", i)
		doc := bson.D{{Key: "_id", Value: name}, {Key: "host", Value: s.Host()}, {Key: "state", Value: 1}}
		if _, err := c.cfg.Client().Database("config").Collection("shards").InsertOne(context.Background(), doc); err != nil {
			b.Fatalf("the test server refuses to hold config.shards: %v", err)
		}
		var batches []benchtool.Batch
		for j := range collsPerShard {
			k := i*collsPerShard + j // a seed of its own: no two shards hold the same documents
			docs := benchtool.GenCollection(k, mb<<20/collsPerShard)
			batches = append(batches, benchtool.Batches(fmt.Sprintf("c%d", k), docs)...)
			c.docs += len(docs)
			for _, d := range docs {
				c.size += int64(len(d))
			}
		}
		benchtool.InsertAll(context.Background(), b, s.Client(), s.DB("bench"), batches, 2)
		resetOplog(b, s)
		c.shards, c.names, c.data = append(c.shards, s), append(c.names, name), append(c.data, batches)
	}
	c.loadElapsed = time.Since(t0)
	b.Logf("stand-in cluster: %d shards × %d MiB, %d documents, %.1f MiB of BSON, loaded in %s (load average %s)",
		n, mb, c.docs, mib(c.size), c.loadElapsed.Round(time.Second), benchtool.LoadAverage())
	return c
}

// resetOplog empties a loaded shard's oplog, as if the load were long
// past: FerretDB answers every oplog query by ts with a full scan, which
// on a shard whose oplog still holds the whole load costs seconds per
// read, where MongoDB seeks an index (the cost would be FerretDB's, not
// rewind's). It drops local.oplog.rs, creates it again (capped, 100 MiB,
// as the test server does), writes one marker document, and fails b
// unless the server logged it.
func resetOplog(b *testing.B, s *testserver.Server) {
	ctx := context.Background()
	local := s.Client().Database("local")
	if err := local.Collection("oplog.rs").Drop(ctx); err != nil {
		b.Fatalf("drop the loaded shard's oplog: %v", err)
	}
	if err := local.CreateCollection(ctx, "oplog.rs", options.CreateCollection().SetCapped(true).SetSizeInBytes(100<<20)); err != nil {
		b.Fatalf("create the shard's oplog again: %v", err)
	}
	if _, err := s.Client().Database(s.DB("bench")).Collection("marker").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}}); err != nil {
		b.Fatal(err)
	}
	n, err := local.Collection("oplog.rs").CountDocuments(ctx, bson.D{})
	if err != nil || n != 1 {
		b.Fatalf("the shard's new oplog holds %d entries after one insert (%v), want 1: the server no longer logs into a re-created oplog", n, err)
	}
}

// inputs names the cluster as --shard NAME=URI and --config-server do;
// uris, when given, replace the shards' own (a link in front of each).
func (c *standIn) inputs(uris ...string) cluster.Inputs {
	in := cluster.Inputs{ConfigServer: c.cfg.URI()}
	for i, n := range c.names {
		uri := c.shards[i].URI()
		if uris != nil {
			uri = uris[i]
		}
		in.Shards = append(in.Shards, cluster.Shard{Name: n, URI: uri})
	}
	return in
}

// args are the agent's flags naming the cluster.
func (c *standIn) args() []string {
	out := []string{"--config-server", c.cfg.URI()}
	for i, n := range c.names {
		out = append(out, "--shard", n+"="+c.shards[i].URI())
	}
	return out
}

// newRepo initializes a file repository under dir for src (a
// deployment's Record; a cluster restore plans by it), as `rewind init`
// does.
func newRepo(b *testing.B, dir string, src repo.Source) (string, *repo.Repository) {
	url := "file://" + filepath.Join(dir, "repo")
	st, err := storage.Open(context.Background(), url)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	r, err := repo.Init(context.Background(), st, repo.InitOptions{Location: url, Source: src})
	if err != nil {
		b.Fatal(err)
	}
	return url, r
}

// waitClusterSnapshot waits for the agent's first cluster snapshot.
func waitClusterSnapshot(b *testing.B, r *repo.Repository, within time.Duration) repo.ClusterManifest {
	deadline := time.Now().Add(within)
	for {
		ids, err := r.ListClusterSnapshots(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if len(ids) > 0 {
			m, err := r.ReadClusterManifest(context.Background(), ids[0])
			if err != nil {
				b.Fatal(err)
			}
			return m
		}
		if time.Now().After(deadline) {
			b.Fatalf("the agent stored no cluster snapshot within %s", within)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitCovered waits until the agent's heartbeat says shard's oplog is
// complete through t.
func waitCovered(b *testing.B, r *repo.Repository, shard string, t optime.Timestamp, within time.Duration) {
	deadline := time.Now().Add(within)
	for {
		hb, err := r.ReadHeartbeat(context.Background(), shard)
		if err == nil && !hb.Covered().Before(t) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("shard %s: the agent's heartbeat has its oplog complete only through %s after %s, want %s (%v)", shard, hb.Covered(), within, t, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// logRecord is one line a snapshot logged: when, what, about which shard.
type logRecord struct {
	at    time.Time
	msg   string
	shard string
}

// logBook keeps the lines a snapshot logs at info level and above, to
// tell where its time went (when each shard's copy ended, when the parts
// were done, when the cluster was complete).
type logBook struct {
	mu   sync.Mutex
	recs []logRecord
}

func (lb *logBook) logger() *slog.Logger { return slog.New(&bookHandler{book: lb}) }

// at is when the first line msg (for shard, "" for any) was logged.
func (lb *logBook) at(msg, shard string) (time.Time, bool) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	for _, r := range lb.recs {
		if r.msg == msg && (shard == "" || r.shard == shard) {
			return r.at, true
		}
	}
	return time.Time{}, false
}

// last is when the last line msg (any shard) was logged.
func (lb *logBook) last(msg string) time.Time {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var t time.Time
	for _, r := range lb.recs {
		if r.msg == msg && r.at.After(t) {
			t = r.at
		}
	}
	return t
}

type bookHandler struct {
	book  *logBook
	shard string
}

func (h *bookHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelInfo }

func (h *bookHandler) Handle(_ context.Context, r slog.Record) error {
	h.book.mu.Lock()
	defer h.book.mu.Unlock()
	h.book.recs = append(h.book.recs, logRecord{at: r.Time, msg: r.Message, shard: h.shard})
	return nil
}

func (h *bookHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	n := *h
	for _, a := range attrs {
		if a.Key == "shard" {
			n.shard = a.Value.String()
		}
	}
	return &n
}

func (h *bookHandler) WithGroup(string) slog.Handler { return h }

func mib(n int64) float64 { return float64(n) / (1 << 20) }

func secs(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }
