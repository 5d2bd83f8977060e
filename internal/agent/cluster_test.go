package agent_test

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// standIn is a stand-in sharded cluster: test servers as shards, given
// with --shard NAME=URI, and one playing the config server, whose
// config.shards documents point at them.
type standIn struct {
	shards map[string]*testserver.Server
	cfg    *testserver.Server
}

func startStandIn(t *testing.T, names ...string) *standIn {
	t.Helper()
	c := &standIn{shards: map[string]*testserver.Server{}, cfg: testserver.Start(t)}
	if c.cfg.External() {
		t.Skip("a stand-in cluster needs test servers of its own (one per shard); against $REWIND_TEST_MONGODB_URI every server would be the same deployment (internal/cluster's TestFromConfigServer discovers a real mongos)")
	}
	for _, n := range names {
		c.addShard(t, n, testserver.Start(t))
	}
	return c
}

// addShard inserts the shard's config.shards document, as addShard does.
func (c *standIn) addShard(t *testing.T, name string, s *testserver.Server) {
	t.Helper()
	c.shards[name] = s
	doc := bson.D{{Key: "_id", Value: name}, {Key: "host", Value: s.Host()}, {Key: "state", Value: 1}}
	if _, err := c.cfg.Client().Database("config").Collection("shards").InsertOne(context.Background(), doc); err != nil {
		t.Fatalf("the test server refuses to hold config.shards: %v", err)
	}
}

func (c *standIn) names() []string {
	var out []string
	for n := range c.shards {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// args are the agent's flags naming the cluster.
func (c *standIn) args() []string {
	out := []string{"--config-server", c.cfg.URI()}
	for _, n := range c.names() {
		out = append(out, "--shard", n+"="+c.shards[n].URI())
	}
	return out
}

// config is an agent config capturing the cluster into repoURL.
func (c *standIn) config(t *testing.T, repoURL string) config.Config {
	cfg := agentConfig(t, c.cfg, repoURL)
	cfg.Source, cfg.ConfigServer = "", config.Secret(c.cfg.URI())
	for _, n := range c.names() {
		cfg.Shards = append(cfg.Shards, config.ShardSource{Name: n, URI: config.Secret(c.shards[n].URI())})
	}
	return cfg
}

// shardDurable is the newest stored entry of a shard.
func shardDurable(t *testing.T, r *repo.Repository, shard string) optime.Timestamp {
	t.Helper()
	h, err := r.History(context.Background(), shard)
	must(t, err)
	var newest optime.Timestamp
	for _, tl := range h.Timelines {
		if tl.Last.After(newest) {
			newest = tl.Last
		}
	}
	return newest
}

// assertShardsCaptured checks that every written shard's timeline is its
// source's oplog, byte for byte, in one timeline without gaps.
func assertShardsCaptured(t *testing.T, r *repo.Repository, c *standIn, written []string) {
	t.Helper()
	for _, n := range written {
		srv := c.shards[n]
		got, h := shardEntries(t, r, n)
		if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
			t.Fatalf("shard %s: want one timeline and no gap, got %d timelines and %d gaps", n, len(h.Timelines), len(h.Gaps))
		}
		want := sourceOplog(t, srv.Client(), h.Timelines[0].First, newestOplogTS(t, srv.Client()))
		if len(want) < 100 {
			t.Fatalf("shard %s: its oplog holds only %d entries", n, len(want))
		}
		t.Logf("shard %s: %d entries", n, len(got))
		assertSameEntries(t, got, want)
	}
}

// One agent captures every shard of a stand-in cluster, each into its own
// shard's timelines, and the config server as shard "config". One shard
// stays idle for the whole run: the cluster's last durable time (the least
// covered-through time) still advances past the agent's start.
func TestClusterCapturesEveryShard(t *testing.T) {
	t.Parallel()
	c := startStandIn(t, "alpha", "beta", "idle")
	url := newRepo(t)
	cfg := c.config(t, url)
	cfg.API.PublicRead = true // (the metrics are read below)
	cfg.Retention.PruneInterval = config.Duration(time.Second)
	a := startAgent(t, cfg)
	started := time.Now()
	r := openRepo(t, url)
	var wg sync.WaitGroup
	for i, n := range []string{"alpha", "beta"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWorkload(t, c.shards[n], uint64(20+i), 300, n)
		}()
	}
	wg.Wait()
	for _, n := range []string{"alpha", "beta"} {
		newest := newestOplogTS(t, c.shards[n].Client())
		waitDurable(t, func() optime.Timestamp { return shardDurable(t, r, n) }, newest, 60*time.Second)
	}
	// The idle shard wrote nothing since the start: only its covered-through
	// time can carry the cluster past it.
	after := optime.Timestamp{T: uint32(started.Unix()) + 2}
	waitDurable(t, func() optime.Timestamp { return clusterDurable(t, r) }, after, 60*time.Second)

	// The agent took its base cluster snapshot: one part per shard and
	// the config server.
	m := waitClusterSnapshot(t, r, 60*time.Second)
	if got := strings.Join(m.Shards(), ","); got != "alpha,beta,config,idle" {
		t.Errorf("cluster snapshot parts %s, want alpha,beta,config,idle", got)
	}

	ov, err := status.LoadOverview(context.Background(), r, "", time.Now())
	must(t, err)
	var names []string
	for _, s := range ov.Shards {
		names = append(names, s.Name)
		if s.State != status.StateCapturing {
			t.Errorf("shard %s: state %q while the agent runs, want %q", s.Name, s.State, status.StateCapturing)
		}
	}
	if got := strings.Join(names, ","); got != "alpha,beta,config,idle" {
		t.Errorf("status shards %s, want alpha,beta,config,idle", got)
	}
	if ov.Cluster == nil || strings.Join(ov.Cluster.Shards, ",") != "alpha,beta,idle" {
		t.Errorf("status cluster %+v, want shards alpha,beta,idle", ov.Cluster)
	}
	// The capture metrics: one series per shard, labelled.
	if labelled := labelled(t, a, "rewind_last_durable_timestamp_seconds"); strings.Join(labelled, ",") != "alpha,beta,config,idle" {
		t.Errorf("rewind_last_durable_timestamp_seconds shards %v, want alpha,beta,config,idle", labelled)
	}
	// The agent prunes a cluster too (every second here): runs, no failure.
	waitFor(t, 30*time.Second, "a prune run of the cluster's agent", func() bool {
		fams := scrapeAgent(t, a)
		return fams["rewind_prune_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount() >= 1
	})
	if n := scrapeAgent(t, a)["rewind_prune_failures_total"].GetMetric()[0].GetCounter().GetValue(); n != 0 {
		t.Errorf("the cluster agent's prune failed %v times", n)
	}
	must(t, a.stop(t))
	assertShardsCaptured(t, r, c, []string{"alpha", "beta"})
	if h, err := r.History(context.Background(), "idle"); err != nil || len(h.Gaps) != 0 {
		t.Errorf("idle shard: history %+v, %v", h, err)
	}
}

// waitClusterSnapshot waits for a cluster snapshot and returns the newest.
func waitClusterSnapshot(t *testing.T, r *repo.Repository, within time.Duration) repo.ClusterManifest {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ids, err := r.ListClusterSnapshots(context.Background())
		must(t, err)
		if len(ids) > 0 {
			m, err := r.ReadClusterManifest(context.Background(), ids[len(ids)-1])
			must(t, err)
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no cluster snapshot within %s", within)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// clusterDurable is the cluster's last durable time as status shows it.
func clusterDurable(t *testing.T, r *repo.Repository) optime.Timestamp {
	t.Helper()
	ov, err := status.LoadOverview(context.Background(), r, "", time.Now())
	must(t, err)
	if ov.LastDurable == nil {
		return optime.Zero
	}
	return optime.Timestamp{T: ov.LastDurable.T, I: ov.LastDurable.I}
}

// The agent capturing a stand-in cluster is killed with SIGKILL at random
// moments while two shards take writes, and restarted each time: every
// shard's timeline is still its oplog byte for byte, nothing missing,
// nothing repeated.
func TestClusterCaptureSurvivesKill9(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	c := startStandIn(t, "alpha", "beta")
	url := newRepo(t)
	args := append(c.args(), "--repo", url, "--flush-interval", "200ms", "--api-listen", "",
		"--spool-dir", filepath.Join(t.TempDir(), "spool"))
	rewindBinary(t) // built before the writes start, so the kills fall among them
	var wg sync.WaitGroup
	for i, n := range []string{"alpha", "beta"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runWorkload(t, c.shards[n], seed+uint64(i), 1<<20, n, func(c *workload.Config) { c.Rate, c.Duration = 200, 8*time.Second })
		}()
	}
	for range 5 {
		p := startAgentProcess(t, args...)
		time.Sleep(time.Duration(400+rng.IntN(1200)) * time.Millisecond)
		p.kill()
	}
	wg.Wait()
	p := startAgentProcess(t, args...)
	r := openRepo(t, url)
	for _, n := range []string{"alpha", "beta"} {
		newest := newestOplogTS(t, c.shards[n].Client())
		waitDurable(t, func() optime.Timestamp { return shardDurable(t, r, n) }, newest, 90*time.Second)
	}
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exited %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	assertShardsCaptured(t, r, c, []string{"alpha", "beta"})
}

// A shard added to config.shards while the agent captures, then removed, is
// recorded in the repository with its time, logged and alerted; the added
// shard is captured from then on, without a restart, and has its metrics.
func TestClusterTopologyChange(t *testing.T) {
	t.Parallel()
	c := startStandIn(t, "alpha")
	url := newRepo(t)
	cfg := c.config(t, url)
	cfg.Alerts.CheckInterval = config.Duration(200 * time.Millisecond)
	cfg.API.PublicRead = true
	logs := &lockedWriter{w: &bytes.Buffer{}}
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, HeartbeatEvery: 500 * time.Millisecond, TopologyEvery: 200 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil))}
	ra := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	t.Cleanup(func() { ra.stop(t) })
	r := openRepo(t, url)
	waitTopology(t, r, func(ts []repo.Topology) bool { return len(ts) == 1 })

	before := time.Now()
	c.addShard(t, "gamma", testserver.Start(t))
	recs := waitTopology(t, r, func(ts []repo.Topology) bool { return len(ts) == 2 })
	added := recs[1]
	if !slices.Equal(added.Added, []string{"gamma"}) || len(added.Removed) != 0 ||
		!slices.Equal(added.Cluster.Names(), []string{"alpha", "gamma"}) || added.At.Before(before.Add(-time.Second)) {
		t.Fatalf("topology record after adding gamma: %+v", added)
	}
	waitFor(t, 30*time.Second, "topology_changed fires", func() bool {
		for _, f := range getAlerts(t, ra).Firing {
			if f.Alert == alert.TopologyChanged && strings.Contains(f.Summary, "gamma") {
				return true
			}
		}
		return false
	})
	if !strings.Contains(logText(logs), "the cluster's shards changed") || !strings.Contains(logText(logs), "added=[gamma]") {
		t.Errorf("the change is not logged:\n%s", logText(logs))
	}
	gamma := c.shards["gamma"]
	runWorkload(t, gamma, 3, 1<<20, "joined", func(c *workload.Config) { c.Rate, c.Duration = 100, 2*time.Second })
	newest := newestOplogTS(t, gamma.Client())
	waitDurable(t, func() optime.Timestamp { return shardDurable(t, r, "gamma") }, newest, 60*time.Second)
	if !strings.Contains(logText(logs), `msg="capturing the added shard" shard=gamma`) {
		t.Errorf("the start of the added shard's capture is not logged:\n%s", logText(logs))
	}
	if got := labelled(t, ra, "rewind_last_durable_timestamp_seconds"); !slices.Contains(got, "gamma") {
		t.Errorf("rewind_last_durable_timestamp_seconds has shards %v, want gamma among them", got)
	}

	_, err := c.cfg.Client().Database("config").Collection("shards").DeleteOne(context.Background(), bson.D{{Key: "_id", Value: "gamma"}})
	must(t, err)
	recs = waitTopology(t, r, func(ts []repo.Topology) bool { return len(ts) == 3 })
	if !slices.Equal(recs[2].Removed, []string{"gamma"}) || !slices.Equal(recs[2].Cluster.Names(), []string{"alpha"}) {
		t.Fatalf("topology record after removing gamma: %+v", recs[2])
	}
	ov, err := status.LoadOverview(context.Background(), r, "", time.Now())
	must(t, err)
	if ov.Cluster == nil || ov.Cluster.TopologyChanged == nil {
		t.Errorf("status does not show the topology change: %+v", ov.Cluster)
	}
}

// labelled lists the shard labels of a metric the agent exposes, sorted.
func labelled(t *testing.T, a *runningAgent, metric string) []string {
	t.Helper()
	var out []string
	for _, m := range scrapeAgent(t, a)[metric].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "shard" {
				out = append(out, l.GetValue())
			}
		}
	}
	slices.Sort(out)
	return out
}

func waitTopology(t *testing.T, r *repo.Repository, ok func([]repo.Topology) bool) []repo.Topology {
	t.Helper()
	var recs []repo.Topology
	waitFor(t, 30*time.Second, "topology records", func() bool {
		var err error
		recs, err = r.ListTopology(context.Background())
		must(t, err)
		return ok(recs)
	})
	return recs
}

// logText reads what the agent logged so far into l.
func logText(l *lockedWriter) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.String()
}

// One shard's source failing, and not the agent's first, fires an alert
// naming that shard (its event's shard and summary), while the other
// shards' capture alerts stay quiet; it resolves once the shard is back.
func TestClusterShardAlert(t *testing.T) {
	t.Parallel()
	c := startStandIn(t, "alpha", "beta")
	url := newRepo(t)
	cfg := c.config(t, url)
	cfg.Alerts.CheckInterval = config.Duration(200 * time.Millisecond)
	cfg.Alerts.SourceUnreachableFor = config.Duration(time.Second)
	cfg.API.PublicRead = true
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, HeartbeatEvery: 500 * time.Millisecond, Log: testLogger(t)}
	ra := &runningAgent{Agent: a, cancel: cancel, done: make(chan error, 1)}
	go func() { ra.done <- a.Run(ctx) }()
	t.Cleanup(func() { ra.stop(t) })
	r := openRepo(t, url)
	waitFor(t, 30*time.Second, "the agent captures shard beta", func() bool {
		_, err := r.ReadHeartbeat(context.Background(), "beta")
		return err == nil
	})
	// The agent takes its first cluster snapshot at start: a shard killed
	// during it would fail it too (snapshot_failed, an alert about the
	// deployment, not a shard), which is not what this test is about.
	waitFor(t, 30*time.Second, "the agent's first cluster snapshot", func() bool {
		ids, err := r.ListClusterSnapshots(context.Background())
		return err == nil && len(ids) > 0
	})

	c.shards["beta"].Kill()
	var fired alert.Event
	waitFor(t, 60*time.Second, "source_unreachable fires for shard beta", func() bool {
		for _, f := range getAlerts(t, ra).Firing {
			if f.Alert == alert.SourceUnreachable && f.Shard == "beta" {
				fired = f
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(fired.Summary, "shard beta: ") {
		t.Errorf("the alert's summary does not name the shard: %q", fired.Summary)
	}
	for _, f := range getAlerts(t, ra).Firing {
		if f.Shard == "alpha" {
			t.Errorf("shard alpha's capture alert %s fires while only beta failed: %s", f.Alert, f.Summary)
		}
	}
	c.shards["beta"].Restart()
	waitFor(t, 60*time.Second, "source_unreachable for shard beta resolves", func() bool {
		for _, f := range getAlerts(t, ra).Firing {
			if f.Alert == alert.SourceUnreachable {
				return false
			}
		}
		return true
	})
}
