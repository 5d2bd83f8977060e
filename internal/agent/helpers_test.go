package agent_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// newRepo initializes an empty file repository and returns its URL.
func newRepo(t *testing.T) string {
	t.Helper()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	initRepo(t, url)
	return url
}

func initRepo(t *testing.T, url string) {
	t.Helper()
	initRepoWith(t, url, storage.Options{})
}

func initRepoWith(t *testing.T, url string, opts storage.Options) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.OpenWith(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := repo.Init(ctx, st, repo.InitOptions{Location: url}); err != nil {
		t.Fatal(err)
	}
}

func agentConfig(t *testing.T, srv *testserver.Server, repoURL string) config.Config {
	cfg := config.Default()
	cfg.API.Listen = "127.0.0.1:0" // tests run in parallel: never the shared default port
	cfg.Source = config.Secret(srv.URI())
	cfg.Repo = repoURL
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	return cfg
}

// runningAgent is an agent run in-process by a test.
type runningAgent struct {
	*agent.Agent
	cancel context.CancelFunc
	done   chan error
}

func startAgent(t *testing.T, cfg config.Config) *runningAgent {
	t.Helper()
	return startAgentLogging(t, cfg, testLogger(t))
}

// startAgentLogging is startAgent with the agent's log going to log.
func startAgentLogging(t *testing.T, cfg config.Config, log *slog.Logger) *runningAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, Log: log, HeartbeatEvery: 500 * time.Millisecond}
	ra := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	t.Cleanup(func() { ra.stop(t) })
	return ra
}

// stop ends the agent and returns what Run returned.
func (ra *runningAgent) stop(t *testing.T) error {
	ra.cancel()
	select {
	case err, ok := <-ra.done:
		if ok {
			close(ra.done)
		}
		return err
	case <-time.After(60 * time.Second):
		t.Fatal("agent did not stop within 60 s")
		return nil
	}
}

// wait waits up to within for the agent to end on its own (a refusal at
// start, a fatal error) and returns what Run returned.
func (ra *runningAgent) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err, ok := <-ra.done:
		if ok {
			close(ra.done)
		}
		return err
	case <-time.After(within):
		t.Fatalf("the agent still runs after %s", within)
		return nil
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// newestOplogTS is the ts of the source's newest oplog entry.
func newestOplogTS(t *testing.T, c *mongo.Client) optime.Timestamp {
	t.Helper()
	raw, err := c.Database("local").Collection("oplog.rs").FindOne(context.Background(), bson.D{},
		options.FindOne().SetSort(bson.D{{Key: "$natural", Value: -1}})).Raw()
	if err != nil {
		t.Fatalf("read newest oplog entry: %v", err)
	}
	ts, err := optime.OfEntry(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// sourceOplog reads the source's oplog entries with from <= ts <= to.
func sourceOplog(t *testing.T, c *mongo.Client, from, to optime.Timestamp) []bson.Raw {
	t.Helper()
	filter := bson.D{{Key: "ts", Value: bson.D{
		{Key: "$gte", Value: bson.Timestamp{T: from.T, I: from.I}},
		{Key: "$lte", Value: bson.Timestamp{T: to.T, I: to.I}}}}}
	cur, err := c.Database("local").Collection("oplog.rs").Find(context.Background(), filter,
		options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		t.Fatalf("read source oplog: %v", err)
	}
	var out []bson.Raw
	for cur.Next(context.Background()) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// repoEntries reads every entry of every segment of the repository's only
// shard, in order, with the timelines they belong to.
func repoEntries(t *testing.T, url string) ([]bson.Raw, repo.History) {
	t.Helper()
	return repoEntriesWith(t, url, storage.Options{})
}

func repoEntriesWith(t *testing.T, url string, opts storage.Options) ([]bson.Raw, repo.History) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.OpenWith(ctx, url, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := r.Shards(ctx)
	if err != nil || len(shards) != 1 {
		t.Fatalf("shards = %v, %v; want exactly one", shards, err)
	}
	return shardEntries(t, r, shards[0])
}

// shardEntries reads every entry of every segment of one shard, in order,
// with the timelines they belong to.
func shardEntries(t *testing.T, r *repo.Repository, shard string) ([]bson.Raw, repo.History) {
	t.Helper()
	ctx := context.Background()
	h, err := r.History(ctx, shard)
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for _, tl := range h.Timelines {
		for i, seg := range tl.Segments {
			// Every segment names the one before it: the chain that makes a
			// missing segment visible survives restarts and kills.
			if i > 0 && seg.Prev != tl.Segments[i-1].Last {
				t.Fatalf("segment %s names %s as the entry before it, want %s", seg.Key, seg.Prev, tl.Segments[i-1].Last)
			}
			es, err := r.ReadSegment(ctx, seg)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, es...)
		}
	}
	return out, h
}

// assertSameEntries checks got equals want byte for byte, none missing or repeated.
func assertSameEntries(t *testing.T, got, want []bson.Raw) {
	t.Helper()
	if d := entriesDiff(got, want); d != "" {
		t.Fatal(d)
	}
}

// entriesDiff says how got differs from want (an entry differs, some are
// missing or repeated, or out of order), "" when they are equal byte for byte.
func entriesDiff(got, want []bson.Raw) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if !bytes.Equal(got[i], want[i]) {
			return fmt.Sprintf("entry %d differs:\n captured %s\n source   %s", i, got[i], want[i])
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("captured %d entries, the source's oplog holds %d in the same range", len(got), len(want))
	}
	for i := 1; i < len(got); i++ {
		a, _ := optime.OfEntry(got[i-1])
		b, _ := optime.OfEntry(got[i])
		if !b.After(a) {
			return fmt.Sprintf("entry %d (%s) does not follow entry %d (%s): duplicate or out of order", i, b, i-1, a)
		}
	}
	return ""
}

// waitDurable waits until the repository holds every entry up to ts.
func waitDurable(t *testing.T, stats func() optime.Timestamp, ts optime.Timestamp, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for stats().Before(ts) {
		if time.Now().After(deadline) {
			t.Fatalf("last durable %s has not reached %s within %s (%s)", stats(), ts, within, debugInfo())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runWorkload writes ops operations into databases named after part (so
// several runs on one server do not collide) and returns the workload's stats.
func runWorkload(t *testing.T, srv *testserver.Server, seed uint64, ops int, part string, tweak ...func(*workload.Config)) workload.Stats {
	t.Helper()
	cfg := srv.Workload(seed)
	for _, f := range tweak {
		f(&cfg)
	}
	cfg.Prefix = srv.DB(part)
	cfg.Ops, cfg.Databases, cfg.Collections = ops, 2, 3
	st, err := workload.Run(context.Background(), srv.Client(), cfg, nil)
	if err != nil {
		t.Fatalf("workload: %v", err)
	}
	return st
}

// writeOldSnapshot writes a complete one-document snapshot of shard
// "ferretdb" that started daysAgo days ago, straight through the
// repository format, and returns its manifest.
func writeOldSnapshot(t *testing.T, r *repo.Repository, daysAgo int) repo.Manifest {
	t.Helper()
	ctx := context.Background()
	at := time.Now().Add(-time.Duration(daysAgo) * 24 * time.Hour)
	id := repo.NewSnapshotID(at)
	ts := optime.Timestamp{T: uint32(at.Unix()), I: 1}
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
	ref, err := r.WriteChunk(ctx, "ferretdb", id, "c0", 0, []bson.Raw{doc})
	must(t, err)
	m := repo.Manifest{ID: id, Shard: "ferretdb", Start: ts, End: ts, Started: at, Finished: at,
		Collections: []repo.CollectionManifest{{DB: "d", Name: "c", UUID: "c0", Count: 1, Bytes: ref.Bytes, Chunks: []repo.ChunkRef{ref}}}}
	must(t, r.WriteManifest(ctx, m))
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var debugInfo = func() string { return "" }
