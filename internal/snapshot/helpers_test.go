package snapshot_test

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// env is a test server, a source connected to it and a fresh repository.
type env struct {
	t    *testing.T
	srv  *testserver.Server
	src  *source.Source
	repo *repo.Repository
	url  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	srv := testserver.Start(t)
	return newEnvOn(t, srv)
}

func newEnvOn(t *testing.T, srv *testserver.Server) *env {
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
	t.Cleanup(func() { src.Close(context.Background()) })
	return &env{t: t, srv: srv, src: src, repo: r, url: url}
}

// take takes a snapshot with test logging.
func (e *env) take(o snapshot.Options) (repo.Manifest, error) {
	e.t.Helper()
	if o.Log == nil {
		o.Log = testLogger(e.t)
	}
	return snapshot.Take(context.Background(), e.src, e.repo, o)
}

// workload writes ops operations into databases named after part.
func (e *env) workload(seed uint64, ops int, part string, tweak ...func(*workload.Config)) workload.Config {
	e.t.Helper()
	cfg := e.srv.Workload(seed)
	cfg.Prefix = e.srv.DB(part)
	cfg.Ops, cfg.Databases, cfg.Collections = ops, 2, 3
	for _, f := range tweak {
		f(&cfg)
	}
	if _, err := workload.Run(context.Background(), e.srv.Client(), cfg, nil); err != nil {
		e.t.Fatalf("workload: %v", err)
	}
	return cfg
}

// sourceDocs reads every document of db.coll, sorted by raw bytes.
func sourceDocs(t *testing.T, c *mongo.Client, db, coll string) []bson.Raw {
	t.Helper()
	cur, err := c.Database(db).Collection(coll).Find(context.Background(), bson.D{})
	must(t, err)
	var out []bson.Raw
	for cur.Next(context.Background()) {
		out = append(out, slices.Clone(cur.Current))
	}
	must(t, cur.Err())
	sortRaw(out)
	return out
}

// snapshotDocs reads every document a manifest holds for one collection,
// sorted by raw bytes.
func snapshotDocs(t *testing.T, r *repo.Repository, cm repo.CollectionManifest) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	for _, ref := range cm.Chunks {
		docs, err := r.ReadChunk(context.Background(), ref)
		must(t, err)
		out = append(out, docs...)
	}
	sortRaw(out)
	return out
}

func sortRaw(docs []bson.Raw) {
	slices.SortFunc(docs, func(a, b bson.Raw) int { return bytes.Compare(a, b) })
}

// assertSameDocs checks that the snapshot holds exactly the source's
// documents, byte for byte.
func assertSameDocs(t *testing.T, ns string, got, want []bson.Raw) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: snapshot holds %d documents, the source %d", ns, len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("%s: document %d differs:\n snapshot %s\n source   %s", ns, i, got[i], want[i])
		}
	}
}

// byName indexes a manifest's collections by "db.coll".
func byName(m repo.Manifest) map[string]repo.CollectionManifest {
	out := map[string]repo.CollectionManifest{}
	for _, c := range m.Collections {
		out[c.DB+"."+c.Name] = c
	}
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// assertCovered checks that one timeline's segments hold [start, end].
func assertCovered(t *testing.T, e *env, shard string, start, end optime.Timestamp) {
	t.Helper()
	segs, err := e.repo.ListSegments(context.Background(), shard)
	must(t, err)
	if len(segs) == 0 {
		t.Fatalf("the repository holds no oplog segments; want [%s, %s] covered", start, end)
	}
	if segs[0].First.After(start) || segs[len(segs)-1].Last.Before(end) {
		t.Fatalf("segments cover [%s, %s], want [%s, %s]", segs[0].First, segs[len(segs)-1].Last, start, end)
	}
	for i := 1; i < len(segs); i++ {
		if segs[i].Timeline != segs[0].Timeline {
			t.Fatalf("segments span timelines %s and %s", segs[0].Timeline, segs[i].Timeline)
		}
	}
}

func mongoIndex(name, field string) mongo.IndexModel {
	return mongo.IndexModel{Keys: bson.D{{Key: field, Value: 1}}, Options: options.Index().SetName(name)}
}

func indexNames(specs []bson.Raw) string {
	var names []string
	for _, s := range specs {
		n, _ := s.Lookup("name").StringValueOK()
		names = append(names, n)
	}
	return strings.Join(names, ",")
}
