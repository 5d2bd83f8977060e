package restore_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// fixture is a source server whose workload was captured by an in-process
// agent into a file repository, with snapshots taken while it ran and the
// oracle's marks.
type fixture struct {
	srv       *testserver.Server
	url       string
	repo      *repo.Repository
	cfg       workload.Config
	marks     []oracle.Mark
	manifests []repo.Manifest
	agent     *agent.Agent
}

type fixtureOptions struct {
	seed        uint64
	ops         int
	snapshotsAt []int // take a snapshot (concurrently with the workload) once this many ops are done
	every       int   // record a mark every this many batches
}

func newFixture(t *testing.T, o fixtureOptions) *fixture {
	t.Helper()
	ctx := context.Background()
	srv := testserver.Start(t)
	fx := &fixture{srv: srv, url: "file://" + filepath.Join(t.TempDir(), "repo")}
	st, err := storage.Open(ctx, fx.url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	fx.repo, err = repo.Init(ctx, st, repo.InitOptions{Location: fx.url})
	must(t, err)

	fx.cfg = srv.Workload(o.seed)
	fx.cfg.Databases, fx.cfg.Collections, fx.cfg.BatchSize = 2, 3, 10
	ag := startAgent(t, srv, fx.url)
	fx.agent = ag
	waitAgent(t, ag)

	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	defer func() {
		cctx, cancel := cleanupContext()
		defer cancel()
		src.Close(cctx)
	}()
	rec := &oracle.Recorder{Client: srv.Client(), Filter: oracle.Filter{Include: workload.Databases(fx.cfg)}, Every: max(o.every, 1)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var snapErr error
	next := 0
	fx.cfg.Ops = o.ops
	start := time.Now()
	_, err = workload.Run(ctx, srv.Client(), fx.cfg, func(ctx context.Context, b workload.Batch) error {
		if next < len(o.snapshotsAt) && b.Ops >= o.snapshotsAt[next] {
			next++
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, err := snapshot.Take(context.Background(), src, fx.repo, snapshot.Options{Parallel: 2, ChunkBytes: 16 << 10,
					Capture: snapshot.CaptureByAgent, Log: testLogger(t)})
				mu.Lock()
				defer mu.Unlock()
				if err != nil && snapErr == nil {
					snapErr = err
				}
				fx.manifests = append(fx.manifests, m)
			}()
		}
		return rec.OnBatch(ctx, b)
	})
	must(t, err)
	last, err := oracle.LastOplogTS(ctx, srv.Client())
	must(t, err)
	if n := len(rec.Marks); n == 0 || rec.Marks[n-1].TS != last {
		_, err := rec.Record(ctx, workload.Batch{})
		must(t, err)
	}
	wg.Wait()
	must(t, snapErr)
	fx.marks = rec.Marks
	waitDurable(t, ag, last, 60*time.Second)
	t.Logf("fixture: %d ops, %d marks, %d snapshots in %s", o.ops, len(fx.marks), len(fx.manifests), time.Since(start).Round(time.Millisecond))
	return fx
}

// newRepoAndSource is a new file repository and a connection to srv as a
// source, both closed when the test ends.
func newRepoAndSource(t *testing.T, srv *testserver.Server) (*repo.Repository, *source.Source) {
	t.Helper()
	ctx := context.Background()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(t, err)
	src, err := source.Connect(ctx, srv.URI())
	must(t, err)
	t.Cleanup(func() {
		cctx, cancel := cleanupContext()
		defer cancel()
		src.Close(cctx)
	})
	return r, src
}

func startAgent(t *testing.T, srv *testserver.Server, url string) *agent.Agent {
	t.Helper()
	cfg := config.Default()
	cfg.API.Listen = "127.0.0.1:0" // tests run in parallel: never the shared default port
	cfg.Source = config.Secret(srv.URI())
	cfg.Repo = url
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	cfg.Snapshot.Every = 0 // the fixture takes its snapshots at chosen points
	return runAgent(t, cfg)
}

// runAgent runs an agent with cfg in-process until the test ends.
func runAgent(t *testing.T, cfg config.Config) *agent.Agent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, Log: testLogger(t), HeartbeatEvery: 500 * time.Millisecond}
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
	return a
}

// waitAgent waits until the agent has started capturing.
func waitAgent(t *testing.T, a *agent.Agent) {
	t.Helper()
	waitFor(t, 30*time.Second, "the agent starts capturing", func() bool { return a.Stats() != nil })
}

func waitDurable(t *testing.T, a *agent.Agent, ts optime.Timestamp, within time.Duration) {
	t.Helper()
	waitFor(t, within, "the last durable timestamp reaches "+ts.String(), func() bool { return !a.Stats().LastDurable().Before(ts) })
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cleanupContext bounds a cleanup: a server that hangs cannot hang the test.
func cleanupContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 30*time.Second)
}

func disconnect(c *mongo.Client) {
	ctx, cancel := cleanupContext()
	defer cancel()
	_ = c.Disconnect(ctx)
}

// restoreTo plans and executes a restore of the fixture's repository.
func (fx *fixture) restoreTo(t *testing.T, target *mongo.Client, req restore.Request, drop bool) (restore.Plan, restore.Report, error) {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Load(ctx, fx.repo)
	if err != nil {
		return restore.Plan{}, restore.Report{}, err
	}
	p, err := restore.Build(cat, req)
	if err != nil {
		return p, restore.Report{}, err
	}
	rep, err := restore.Execute(ctx, fx.repo, target, p, restore.Options{Parallel: 3, Drop: drop, Log: testLogger(t)})
	return p, rep, err
}

func at(ts optime.Timestamp) restore.When { return restore.When{TS: ts} }

func dropDBs(t *testing.T, c *mongo.Client, dbs ...string) {
	t.Helper()
	ctx, cancel := cleanupContext()
	defer cancel()
	for _, db := range dbs {
		must(t, c.Database(db).Drop(ctx))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}
