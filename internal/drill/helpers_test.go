package drill_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// fixture is a source with a few hundred documents, captured by an
// in-process agent (whose base snapshot is taken at start) into a file
// repository.
type fixture struct {
	srv   *testserver.Server
	src   *source.Source
	dir   string // the repository's directory
	url   string
	repo  *repo.Repository
	agent *agent.Agent
	snap  repo.Manifest
	shop  string // the database name
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	fx := &fixture{srv: testserver.Start(t), dir: filepath.Join(t.TempDir(), "repo")}
	fx.shop = fx.srv.DB("shop")
	fx.url = "file://" + fx.dir
	for i := range 200 {
		fx.insert(t, "orders", bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: fmt.Sprintf("s-%d", i)}, {Key: "qty", Value: i % 7}})
	}
	for i := range 30 {
		fx.insert(t, "users", bson.D{{Key: "_id", Value: fmt.Sprintf("u%03d", i)}, {Key: "tags", Value: bson.A{"a", int64(i)}}})
	}
	st, err := storage.Open(ctx, fx.url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	fx.repo, err = repo.Init(ctx, st, repo.InitOptions{Location: fx.url})
	must(t, err)
	fx.src, err = source.Connect(ctx, fx.srv.URI())
	must(t, err)
	t.Cleanup(func() { fx.src.Close(context.WithoutCancel(ctx)) })
	fx.agent = startAgent(t, fx.srv, fx.url)
	waitFor(t, 2*time.Minute, "the agent's base snapshot", func() bool {
		refs, err := fx.repo.ListSnapshots(ctx, fx.src.Shard())
		if err != nil || len(refs) == 0 {
			return false
		}
		fx.snap, err = fx.repo.ReadManifest(ctx, refs[0].Shard, refs[0].ID)
		return err == nil
	})
	fx.waitDurable(t)
	return fx
}

func (fx *fixture) insert(t *testing.T, coll string, doc bson.D) {
	t.Helper()
	_, err := fx.srv.Client().Database(fx.shop).Collection(coll).InsertOne(context.Background(), doc)
	must(t, err)
}

// waitDurable waits until the agent stored the source's newest entry.
func (fx *fixture) waitDurable(t *testing.T) optime.Timestamp {
	t.Helper()
	last, err := oracle.LastOplogTS(context.Background(), fx.srv.Client())
	must(t, err)
	waitFor(t, time.Minute, "the newest entry is durable", func() bool {
		st := fx.agent.Stats()
		return st != nil && !st.LastDurable().Before(last)
	})
	return last
}

// deps are a drill's dependencies: a fresh scratch server, the source.
func (fx *fixture) deps(t *testing.T, withSource bool) (drill.Deps, *mongo.Client) {
	scratch := testserver.Start(t).Client()
	d := drill.Deps{Repo: fx.repo, Scratch: scratch, Log: quiet, Parallel: 2}
	if withSource {
		d.Source = fx.src
	}
	return d, scratch
}

func startAgent(t *testing.T, srv *testserver.Server, url string) *agent.Agent {
	t.Helper()
	cfg := config.Default()
	cfg.API.Listen = ""
	cfg.Source = config.Secret(srv.URI())
	cfg.Repo = url
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, Log: quiet, HeartbeatEvery: 500 * time.Millisecond}
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

// userDBs lists a deployment's databases other than admin, config, local.
func userDBs(t *testing.T, c *mongo.Client) []string {
	t.Helper()
	names, err := c.ListDatabaseNames(context.Background(), bson.D{})
	must(t, err)
	var out []string
	for _, n := range names {
		if n != "admin" && n != "config" && n != "local" {
			out = append(out, n)
		}
	}
	return out
}
