package export_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// captured is a workload captured by an agent into a file repository, with
// two snapshots taken while it wrote, then a collection created after the
// last one (in a new database, and a new one in a workload database), and
// the oracle's marks all along.
type captured struct {
	srv   *testserver.Server
	repo  *repo.Repository
	dbs   []string // every database written: the workload's and the late one
	late  []string // the collections created after the last snapshot
	marks []oracle.Mark
	cat   catalog.Catalog
}

func capture(t *testing.T, seed uint64) *captured {
	t.Helper()
	ctx := context.Background()
	c := &captured{srv: testserver.Start(t)}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	c.repo, err = repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(t, err)
	ag := runAgent(t, c.srv.URI(), url)
	src, err := source.Connect(ctx, c.srv.URI())
	must(t, err)
	t.Cleanup(func() { src.Close(context.Background()) })

	cfg := c.srv.Workload(seed)
	cfg.Databases, cfg.Collections, cfg.BatchSize, cfg.Ops, cfg.Rate = 2, 3, 10, 400, 100
	lateDB := c.srv.DB("late")
	c.dbs = append(workload.Databases(cfg), lateDB)
	c.late = []string{lateDB + ".made later", c.dbs[0] + ".created after"}
	rec := &oracle.Recorder{Client: c.srv.Client(), Filter: oracle.Filter{Include: c.dbs}, Every: 4}
	var snaps sync.WaitGroup
	var mu sync.Mutex
	var snapErr error
	at := []int{30, 200}
	_, err = workload.Run(ctx, c.srv.Client(), cfg, func(ctx context.Context, b workload.Batch) error {
		if len(at) > 0 && b.Ops >= at[0] {
			at = at[1:]
			snaps.Add(1)
			go func() { // the workload writes on during the copy
				defer snaps.Done()
				if _, err := snapshot.Take(context.Background(), src, c.repo, snapshot.Options{Parallel: 2, ChunkBytes: 16 << 10,
					Capture: snapshot.CaptureByAgent, Log: testLogger(t)}); err != nil {
					mu.Lock()
					snapErr = err
					mu.Unlock()
				}
			}()
		}
		return rec.OnBatch(ctx, b)
	})
	must(t, err)
	snaps.Wait()
	must(t, snapErr)
	for i, ns := range c.late {
		db, coll, _ := strings.Cut(ns, ".")
		for j := range 5 {
			_, err := c.srv.Client().Database(db).Collection(coll).InsertOne(ctx, bson.D{{Key: "_id", Value: int32(j)}, {Key: "late", Value: i}})
			must(t, err)
		}
	}
	_, err = rec.Record(ctx, workload.Batch{})
	must(t, err)
	c.marks = rec.Marks
	last, err := oracle.LastOplogTS(ctx, c.srv.Client())
	must(t, err)
	waitFor(t, 60*time.Second, "the agent makes "+last.String()+" durable", func() bool { return !ag.Stats().LastDurable().Before(last) })
	c.cat, err = catalog.Load(ctx, c.repo)
	must(t, err)
	return c
}

// runAgent runs an agent capturing source into the repository at url until
// the test ends (snapshots are the test's), and waits until it captures.
func runAgent(t *testing.T, source, url string) *agent.Agent {
	t.Helper()
	cfg := config.Default()
	cfg.Source, cfg.Repo, cfg.API.Listen = config.Secret(source), url, "127.0.0.1:0"
	cfg.Capture.FlushInterval, cfg.Capture.SpoolDir = config.Duration(200*time.Millisecond), filepath.Join(t.TempDir(), "spool")
	cfg.Snapshot.Every = 0
	ctx, stop := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, Log: testLogger(t), HeartbeatEvery: 500 * time.Millisecond}
	ended := make(chan error, 1)
	go func() { ended <- a.Run(ctx) }()
	t.Cleanup(func() {
		stop()
		if err := <-ended; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	waitFor(t, 30*time.Second, "the agent captures", func() bool { return a.Stats() != nil })
	return a
}

// restorable lists the marks inside a restore window, oldest first.
func (c *captured) restorable() []oracle.Mark {
	var out []oracle.Mark
	for _, m := range c.marks {
		for _, w := range c.cat.Shards[0].Windows {
			if w.Contains(m.TS) {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// duringCopy reports whether the source wrote while snapshot i was copied:
// entries between its start and end, which an export to a point after it
// replays over the copy.
func (c *captured) duringCopy(t *testing.T, i int) int {
	t.Helper()
	snap := c.cat.Shards[0].Snapshots[i]
	n := 0
	for _, tl := range c.cat.Shards[0].Timelines {
		must(t, c.repo.ReadEntries(context.Background(), tl.Segments, snap.Start, func(ts optime.Timestamp, e bson.Raw) error {
			if ts.Before(snap.End) {
				n++
			}
			return nil
		}))
	}
	return n
}

// waitFor polls cond until it holds, failing the test after within.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
	}
}
