package restore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// standIn is a stand-in sharded cluster: test servers as shards, one
// playing the config server (config.shards points at the shards), and a
// mirror that receives every write the router sends to a shard: the
// merged cluster, which the oracle's marks are read from.
type standIn struct {
	names  []string // shard names, sorted
	shards map[string]*testserver.Server
	cfg    *testserver.Server
	mirror *testserver.Server
	dbs    []string // the databases the router writes (same names on every shard)
	// noConfig leaves the config server out of inputs and the agent, as
	// `--shard` without `--config-server` does.
	noConfig bool
}

func startStandIn(t *testing.T, names ...string) *standIn {
	t.Helper()
	c := &standIn{names: names, shards: map[string]*testserver.Server{}, cfg: testserver.Start(t)}
	if c.cfg.External() {
		t.Skip("a stand-in cluster needs test servers of its own (one per shard); against $REWIND_TEST_MONGODB_URI every server would be the same deployment")
	}
	for _, n := range names {
		s := testserver.Start(t)
		c.shards[n] = s
		doc := bson.D{{Key: "_id", Value: n}, {Key: "host", Value: s.Host()}, {Key: "state", Value: 1}}
		_, err := c.cfg.Client().Database("config").Collection("shards").InsertOne(context.Background(), doc)
		must(t, err)
	}
	c.mirror = testserver.Start(t)
	c.dbs = []string{c.mirror.DB("c0"), c.mirror.DB("c1")}
	return c
}

func (c *standIn) inputs() cluster.Inputs {
	in := cluster.Inputs{ConfigServer: c.cfg.URI()}
	if c.noConfig {
		in.ConfigServer = ""
	}
	for _, n := range c.names {
		in.Shards = append(in.Shards, cluster.Shard{Name: n, URI: c.shards[n].URI()})
	}
	return in
}

// open connects to the cluster's members until the test ends.
func (c *standIn) open(t *testing.T) *source.Deployment {
	t.Helper()
	d, err := source.OpenDeployment(context.Background(), c.inputs())
	must(t, err)
	t.Cleanup(func() {
		cctx, cancel := cleanupContext()
		defer cancel()
		d.Close(cctx)
	})
	return d
}

// initRepo initializes a repository for the cluster, as `rewind init
// --shard ... --config-server ...` does.
func (c *standIn) initRepo(t *testing.T) (string, *repo.Repository) {
	t.Helper()
	return initRepoFor(t, c.open(t))
}

// initRepoFor initializes a file repository for the deployment d.
func initRepoFor(t *testing.T, d *source.Deployment) (string, *repo.Repository) {
	t.Helper()
	ctx := context.Background()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Source: d.Record()})
	must(t, err)
	return url, r
}

// agentProcess is `rewind agent` capturing the stand-in cluster as a child
// process, which the oracle kills with SIGKILL and starts again.
type agentProcess struct {
	bin, cfgPath string
	cmd          *exec.Cmd
	done         chan struct{}
	stderr       *bytes.Buffer
}

// startAgent writes the cluster's agent config (heartbeats every 500 ms, so
// a snapshot waiting for the agent to cover its range waits that long, not
// 10 s) and starts `rewind agent` with it.
func (c *standIn) startAgent(t *testing.T, url string) *agentProcess {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	fmt.Fprintf(&b, "repo: %q\n", url)
	if !c.noConfig {
		fmt.Fprintf(&b, "config_server: %q\n", c.cfg.URI())
	}
	b.WriteString("shards:\n")
	for _, n := range c.names {
		fmt.Fprintf(&b, "  - name: %q\n    uri: %q\n", n, c.shards[n].URI())
	}
	fmt.Fprintf(&b, "capture:\n  flush_interval: 200ms\n  heartbeat_interval: 500ms\n  spool_dir: %q\n", filepath.Join(dir, "spool"))
	b.WriteString("snapshot:\n  every: 0s\napi:\n  listen: \"\"\n")
	p := &agentProcess{bin: testbin.Rewind(t), cfgPath: filepath.Join(dir, "rewind.yaml")}
	must(t, os.WriteFile(p.cfgPath, []byte(b.String()), 0o600))
	p.start(t)
	t.Cleanup(p.kill)
	return p
}

func (p *agentProcess) start(t *testing.T) {
	t.Helper()
	p.cmd = exec.Command(p.bin, "agent", "--config", p.cfgPath)
	p.stderr, p.done = &bytes.Buffer{}, make(chan struct{})
	p.cmd.Stderr = p.stderr
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	must(t, p.cmd.Start())
	go func() { _ = p.cmd.Wait(); close(p.done) }()
}

// kill ends the agent with SIGKILL, as a crash would.
func (p *agentProcess) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// running fails the test with the agent's log if it has exited.
func (p *agentProcess) running(t *testing.T) {
	t.Helper()
	select {
	case <-p.done:
		t.Fatalf("the agent exited (%v); its log:\n%s", p.cmd.ProcessState, p.stderr)
	default:
	}
}

// waitCaptured waits until the agent has captured shard (its heartbeat).
func waitCaptured(t *testing.T, r *repo.Repository, shard string) {
	t.Helper()
	waitFor(t, 30*time.Second, "the agent captures shard "+shard, func() bool {
		_, err := r.ReadHeartbeat(context.Background(), shard)
		return err == nil
	})
}

// waitClusterWindow waits until the cluster's windows reach ts: every
// shard's covered-through time has passed it.
func waitClusterWindow(t *testing.T, r *repo.Repository, ts optime.Timestamp) {
	t.Helper()
	waitFor(t, 60*time.Second, "every shard's covered-through time reaches "+ts.String(), func() bool {
		cat, err := catalog.Load(context.Background(), r)
		must(t, err)
		ws := cat.ClusterWindows()
		return len(ws) > 0 && !ws[len(ws)-1].To.Before(ts)
	})
}

// snapshotShard takes one shard's snapshot into the cluster repository
// under the shard's name, while the agent captures its oplog.
func (c *standIn) snapshotShard(t *testing.T, r *repo.Repository, name string) repo.Manifest {
	t.Helper()
	ctx := context.Background()
	src, err := source.Connect(ctx, c.shards[name].URI())
	must(t, err)
	defer func() {
		cctx, cancel := cleanupContext()
		defer cancel()
		src.Close(cctx)
	}()
	m, err := snapshot.Take(ctx, src, r, snapshot.Options{Shard: name, Parallel: 2, ChunkBytes: 16 << 10,
		Capture: snapshot.CaptureByAgent, Log: testLogger(t)})
	must(t, err)
	if m.Shard != name {
		t.Fatalf("snapshot of shard %s stored under %q", name, m.Shard)
	}
	return m
}

// router sends each document to a shard by its _id (a static partition:
// _id mod the number of shards) and the same write to the mirror. Writes
// go one at a time, so between two calls every shard is quiet.
type router struct {
	c     *standIn
	rng   *rand.Rand
	ids   map[string][]int64 // live _ids per namespace
	next  int64
	avoid string // a shard that gets no writes (its _ids are never chosen)
}

func (rt *router) shardOf(id int64) string { return rt.c.names[int(id)%len(rt.c.names)] }

func (rt *router) namespaces() []string {
	var out []string
	for _, db := range rt.c.dbs {
		out = append(out, db+".orders", db+".users")
	}
	return out
}

// step performs one random write: an insert, an update, a replacement or
// a delete.
func (rt *router) step(ctx context.Context, t *testing.T) {
	t.Helper()
	nss := rt.namespaces()
	ns := nss[rt.rng.IntN(len(nss))]
	live := rt.ids[ns]
	var mine []int // indexes of the live _ids the router may write
	for i, id := range live {
		if rt.shardOf(id) != rt.avoid {
			mine = append(mine, i)
		}
	}
	op := rt.rng.IntN(10)
	if len(mine) < 5 {
		op = 0
	}
	switch {
	case op < 4:
		id := rt.newID()
		rt.ids[ns] = append(live, id)
		doc := bson.D{{Key: "_id", Value: id}, {Key: "n", Value: rt.rng.IntN(1000)},
			{Key: "s", Value: fmt.Sprintf("v%d", rt.rng.Uint32())}, {Key: "tags", Value: bson.A{"a", rt.rng.IntN(9)}}}
		rt.write(ctx, t, ns, id, func(c *mongo.Collection) error {
			_, err := c.InsertOne(ctx, doc)
			return err
		})
	case op < 7:
		id := live[mine[rt.rng.IntN(len(mine))]]
		inc := rt.rng.IntN(50)
		rt.write(ctx, t, ns, id, func(c *mongo.Collection) error {
			_, err := c.UpdateOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "n", Value: inc}}},
				{Key: "$set", Value: bson.D{{Key: "sub.k", Value: inc}}}})
			return err
		})
	case op < 8:
		id := live[mine[rt.rng.IntN(len(mine))]]
		s := fmt.Sprintf("r%d", rt.rng.Uint32())
		rt.write(ctx, t, ns, id, func(c *mongo.Collection) error {
			_, err := c.ReplaceOne(ctx, bson.D{{Key: "_id", Value: id}}, bson.D{{Key: "_id", Value: id}, {Key: "s", Value: s}})
			return err
		})
	default:
		i := mine[rt.rng.IntN(len(mine))]
		id := live[i]
		rt.ids[ns] = append(live[:i:i], live[i+1:]...)
		rt.write(ctx, t, ns, id, func(c *mongo.Collection) error {
			_, err := c.DeleteOne(ctx, bson.D{{Key: "_id", Value: id}})
			return err
		})
	}
}

// newID is the next _id whose shard is not the avoided one.
func (rt *router) newID() int64 {
	for {
		rt.next++
		if rt.shardOf(rt.next) != rt.avoid {
			return rt.next
		}
	}
}

// write applies fn on the document's shard and on the mirror (fn must
// write the same each time: draw its values before).
func (rt *router) write(ctx context.Context, t *testing.T, ns string, id int64, fn func(*mongo.Collection) error) {
	t.Helper()
	db, coll, _ := strings.Cut(ns, ".")
	for _, s := range []*testserver.Server{rt.c.shards[rt.shardOf(id)], rt.c.mirror} {
		if err := fn(s.Client().Database(db).Collection(coll)); err != nil {
			t.Fatalf("router: write %s _id %d: %v", ns, id, err)
		}
	}
}

// mark records a cluster mark while every shard is quiet: the cluster
// time is the end of the second of the newest entry on any shard, and the
// router waits for the clock to leave that second, so every later write
// on any shard has a later time.
func (rt *router) mark(ctx context.Context, t *testing.T, rec *oracle.Recorder) oracle.Mark {
	t.Helper()
	var newest optime.Timestamp
	for _, n := range rt.c.names {
		ts, err := oracle.LastOplogTS(ctx, rt.c.shards[n].Client())
		must(t, err)
		if ts.After(newest) {
			newest = ts
		}
	}
	at := optime.Timestamp{T: newest.T, I: 1<<32 - 1}
	m, err := rec.Record(ctx, workload.Batch{OperationTime: at})
	must(t, err)
	waitFor(t, 5*time.Second, "the clock leaves the mark's second", func() bool { return time.Now().Unix() > int64(newest.T) })
	return m
}

// TestClusterOracle captures a stand-in cluster of three shards (one idle
// for the whole run) with one agent process, takes per-shard snapshots (two
// of the busy shards' while the router writes), and restores the cluster,
// merged into one fresh server, to ≥ 30 random cluster marks: whole, one
// database, one collection, renamed. Every restore must equal the mirror's
// state at the mark. Mid-run the agent is killed with SIGKILL (and started
// again ten writes later) and shard beta's server is restarted: marks
// across both stay restorable and exact.
func TestClusterOracle(t *testing.T) {
	seed := uint64(envInt(t, "REWIND_ORACLE_SEED", time.Now().UnixNano()%1e9))
	points := int(envInt(t, "REWIND_ORACLE_POINTS", 32))
	t.Logf("cluster oracle seed %d (REWIND_ORACLE_SEED=%d replays this run), %d restore points", seed, seed, points)
	ctx := context.Background()
	c := startStandIn(t, "alpha", "beta", "idle")
	rt := &router{c: c, rng: rand.New(rand.NewPCG(seed, 2)), ids: map[string][]int64{}}
	for range 60 { // every shard, the idle one too, holds documents before the run
		rt.step(ctx, t)
	}
	url, r := c.initRepo(t)
	ag := c.startAgent(t, url)
	for _, n := range c.names {
		waitCaptured(t, r, n)
		c.snapshotShard(t, r, n)
	}

	rt.avoid = "idle"
	idleFrom, err := oracle.LastOplogTS(ctx, c.shards["idle"].Client())
	must(t, err)
	rec := &oracle.Recorder{Client: c.mirror.Client(), Filter: oracle.Filter{Include: c.dbs}, KeepDocs: true}
	var marks, faulted []oracle.Mark
	for i := range 500 {
		rt.step(ctx, t)
		switch i {
		case 120:
			ag.running(t)
			ag.kill()
			t.Logf("write %d: the agent was killed with SIGKILL", i)
		case 130:
			ag.start(t)
		case 200:
			c.snapshotShard(t, r, "alpha")
		case 300:
			c.snapshotShard(t, r, "beta")
		case 400:
			c.shards["beta"].Restart()
			t.Logf("write %d: shard beta's server was restarted", i)
		}
		if i%15 == 14 {
			marks = append(marks, rt.mark(ctx, t, rec))
			if i == 134 || i == 404 { // the first marks after the kill and after the restart
				faulted = append(faulted, marks[len(marks)-1])
			}
		}
	}
	waitClusterWindow(t, r, marks[len(marks)-1].TS)
	if ts, err := oracle.LastOplogTS(ctx, c.shards["idle"].Client()); err != nil || ts != idleFrom {
		t.Fatalf("the idle shard was written during the run: newest entry %s, was %s (%v)", ts, idleFrom, err)
	}
	cat, err := catalog.Load(ctx, r)
	must(t, err)
	windows := cat.ClusterWindows()
	var restorable []oracle.Mark
	for _, m := range marks {
		for _, w := range windows {
			if w.Contains(m.TS) {
				restorable = append(restorable, m)
				break
			}
		}
	}
	t.Logf("%d marks, %d restorable; cluster windows %+v", len(marks), len(restorable), windows)
	if len(restorable) != len(marks) { // every mark follows every shard's first snapshot
		t.Fatalf("only %d of %d marks are restorable: the kill or the restart broke a window", len(restorable), len(marks))
	}

	target := testserver.Start(t)
	nss := rt.namespaces()
	for i := range points {
		m := restorable[rt.rng.IntN(len(restorable))]
		switch {
		case i == 0:
			m = restorable[len(restorable)-1]
		case i <= len(faulted):
			m = faulted[i-1]
		}
		db, ns := c.dbs[rt.rng.IntN(len(c.dbs))], nss[rt.rng.IntN(len(nss))]
		var kind string
		var f oracle.Filter
		switch i % 4 {
		case 0:
			kind, f = "whole", oracle.Filter{Include: c.dbs}
		case 1:
			kind, f = "database", oracle.Filter{Include: []string{db}}
		case 2:
			kind, f = "renamed database", oracle.Filter{Include: []string{db}, Rename: map[string]string{db: target.DB(fmt.Sprintf("r%d", i))}}
		case 3:
			kind, f = "renamed collection", oracle.Filter{Include: []string{ns}, Rename: map[string]string{ns: target.DB(fmt.Sprintf("r%d", i)) + ".moved"}}
		}
		req := restore.Request{To: at(m.TS), Include: f.Include, Rename: f.Rename}
		if kind == "whole" {
			req.Include = nil
		}
		p, rep, err := restoreCluster(ctx, t, r, target.Client(), req)
		if err != nil {
			t.Fatalf("point %d (%s at mark %d, %s): restore: %v", i, kind, m.N, m.TS, err)
		}
		if len(p.Parts) != len(c.names) {
			t.Fatalf("point %d: planned %d shards, want %d", i, len(p.Parts), len(c.names))
		}
		if !strings.HasPrefix(p.Orphans, restore.OrphansNotSkipped+": the shards' snapshots are not the parts of one cluster snapshot") {
			t.Fatalf("point %d: per-shard snapshots taken one by one, yet the plan says %q", i, p.Orphans)
		}
		if err := oracle.Compare(ctx, target.Client(), m, f); err != nil {
			t.Fatalf("point %d (%s at mark %d, %s, snapshots %s): %v", i, kind, m.N, m.TS, p.Snapshot.ID, err)
		}
		t.Logf("point %2d: %-18s mark %3d at %s: %d docs, %d entries, exact", i, kind, m.N, m.TS, rep.Documents, rep.Entries)
		var drop []string
		for _, col := range p.Collections {
			drop = append(drop, col.Target.DB)
		}
		dropDBs(t, target.Client(), drop...)
	}

	// Bad input: a point after the cluster's last durable time names the
	// shard that holds it back; one before a shard's first snapshot names
	// that shard.
	after := optime.Timestamp{T: windows[len(windows)-1].To.T + 3600}
	_, _, err = restoreCluster(ctx, t, r, target.Client(), restore.Request{To: at(after)})
	t.Logf("after the last durable time: %v", err)
	if !errors.Is(err, restore.ErrOutsideWindows) || !strings.Contains(err.Error(), "shard ") || !strings.Contains(err.Error(), "last restorable point") {
		t.Fatalf("restore after the cluster's last durable time: got %v", err)
	}
	first := marks[0].TS
	_, _, err = restoreCluster(ctx, t, r, target.Client(), restore.Request{To: at(optime.Timestamp{T: first.T - 3600})})
	t.Logf("before the first snapshots: %v", err)
	if !errors.Is(err, restore.ErrOutsideWindows) || !strings.Contains(err.Error(), "shard alpha") {
		t.Fatalf("restore before every snapshot: got %v", err)
	}
}

// restoreCluster runs the one restore path: Prepare, Use, Execute.
func restoreCluster(ctx context.Context, t *testing.T, r *repo.Repository, target *mongo.Client, req restore.Request) (restore.Plan, restore.Report, error) {
	t.Helper()
	p, err := restore.Prepare(ctx, r, req)
	if err != nil {
		return restore.Plan{}, restore.Report{}, err
	}
	defer p.Release()
	tg, err := restore.Use(ctx, target)
	if err != nil {
		return p.Plan, restore.Report{}, err
	}
	rep, err := p.Execute(ctx, tg, restore.Options{Parallel: 3, Log: testLogger(t)})
	return p.Plan, rep, err
}
