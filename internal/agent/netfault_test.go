package agent_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A network fault between the agent and its source, made by a real TCP
// proxy (toxiproxy) in front of the source.
type netFault struct {
	name string
	// toxics are toxiproxy toxic definitions (JSON), added together.
	toxics []string
	// lasts is how long the fault stays while the workload writes.
	lasts time.Duration
	// pulse, when set, applies the toxics for a moment once every pulse
	// instead of all along.
	pulse time.Duration
	// stalls says the fault stops data without closing the connection:
	// capture must notice it within oplog.DefaultStallTimeout and say so,
	// and source_unreachable must fire. Otherwise capture must go on
	// during the fault, only slower.
	stalls bool
}

// netFaults are the faults of issue 17, in the order they run. The
// blackhole lasts the 60 s.
var netFaults = []netFault{
	{name: "latency 500 ms", lasts: 8 * time.Second, toxics: []string{
		`{"name":"lat_down","type":"latency","stream":"downstream","attributes":{"latency":500}}`,
		`{"name":"lat_up","type":"latency","stream":"upstream","attributes":{"latency":500}}`}},
	{name: "bandwidth 100 KB/s", lasts: 8 * time.Second, toxics: []string{
		`{"name":"bw_down","type":"bandwidth","stream":"downstream","attributes":{"rate":100}}`,
		`{"name":"bw_up","type":"bandwidth","stream":"upstream","attributes":{"rate":100}}`}},
	// Every 2 s, each connection that carries data for 300 ms is reset.
	{name: "connection resets every 2 s", lasts: 8 * time.Second, pulse: 2 * time.Second, toxics: []string{
		`{"name":"reset","type":"reset_peer","stream":"downstream","attributes":{"timeout":0}}`}},
	// timeout 0: every byte either way is dropped, connections stay open.
	{name: "blackhole 60 s", lasts: 60 * time.Second, stalls: true, toxics: []string{
		`{"name":"hole_down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`,
		`{"name":"hole_up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`}},
	// Requests reach the source, answers never come back; sockets stay up.
	{name: "half-open", lasts: 15 * time.Second, stalls: true, toxics: []string{
		`{"name":"half","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`}},
}

// The agent reads its source through a fault proxy while a workload
// writes: 500 ms latency, 100 KB/s, connection resets, a 60 s blackhole
// and a half-open connection, one after another. Each stall is noticed
// (logged as a stalled connection, source_unreachable firing) within the
// stall bound; after each fault capture catches up within a bound; and at
// the end the repository holds the source's oplog byte for byte, with no
// gap, and restores to random marks are exact.
func TestCaptureUnderNetworkFaults(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	if strings.Contains(srv.Host(), ",") {
		t.Skipf("the source URI names several hosts (%s): the fault proxy fronts one", srv.Host())
	}
	proxy := startProxy(t, srv.Host())
	url := newRepo(t)
	cfg := agentConfig(t, srv, url)
	cfg.Source = config.Secret(proxiedURI(srv, proxy.Listen))
	cfg.Snapshot.Every = 0 // one snapshot, by hand, after the workload made its collections
	cfg.Alerts.CheckInterval = config.Duration(500 * time.Millisecond)
	cfg.Alerts.SourceUnreachableFor = config.Duration(2 * time.Second)
	logs := &stallWatch{t: t}
	a := startAgentLogging(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	// Where capture starts is decided before the alerts run.
	waitFor(t, 30*time.Second, "the agent's start", func() bool { return a.Alerts() != nil })

	w := startFaultWorkload(t, srv, openRepo(t, url))
	for _, f := range netFaults {
		runFault(t, a, proxy, logs, srv, f)
	}
	checkAfterFaults(t, a, srv, w, url, storage.Options{}, "nf")
}

// checkAfterFaults stops the workload and the agent once capture caught
// up, and checks the repository at url (opened with opts) holds the
// source's oplog byte for byte in one timeline with no gap (the oplog
// never rolled), and that restores to the last mark and two random ones
// (their names tagged with tag) are exact.
func checkAfterFaults(t *testing.T, a *runningAgent, srv *testserver.Server, w *faultWorkload, url string, opts storage.Options, tag string) {
	t.Helper()
	marks := w.finish(t)
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, time.Minute)
	must(t, a.stop(t))
	got, h := repoEntriesWith(t, url, opts)
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap (the oplog never rolled), got %d and %d: %+v", len(h.Timelines), len(h.Gaps), h.Gaps)
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))

	target := testserver.Start(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("restore marks picked with seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	picks := []oracle.Mark{marks[len(marks)-1]}
	for range 2 {
		picks = append(picks, marks[rng.IntN(len(marks)-1)])
	}
	for i, m := range picks {
		restoreMarkCLI(t, url, w.dbs, m, target, fmt.Sprintf("%s%d_", tag, i))
	}
}

// runFault applies one fault for f.lasts while the workload writes, checks
// what capture showed meanwhile, removes it, and checks capture catches up.
func runFault(t *testing.T, a *runningAgent, proxy *faultProxy, logs *stallWatch, srv *testserver.Server, f netFault) {
	t.Helper()
	before, conns := a.Stats().LastDurable(), proxy.accepted.Load()
	began := time.Now()
	addToxics(t, proxy, f)
	unreachable, on := false, began
	for time.Since(began) < f.lasts {
		unreachable = unreachable || a.Alerts().IsFiring(alert.SourceUnreachable)
		time.Sleep(50 * time.Millisecond)
		switch {
		case f.pulse == 0:
		case time.Since(on) >= f.pulse:
			addToxics(t, proxy, f)
			on = time.Now()
		case time.Since(on) >= 300*time.Millisecond:
			proxy.Toxics.ResetToxics(context.Background())
		}
	}
	progressed := a.Stats().LastDurable().After(before)
	proxy.Toxics.ResetToxics(context.Background())
	removed := time.Now()

	if f.stalls {
		noticed := logs.firstAfter(began)
		bound := oplog.DefaultStallTimeout + 3*time.Second
		if noticed.IsZero() || noticed.Sub(began) > bound {
			t.Errorf("%s: capture did not report a stalled connection within %s (first report: %v after the fault began)", f.name, bound, since(began, noticed))
		} else {
			t.Logf("%s: stall reported %.1f s after the fault began", f.name, noticed.Sub(began).Seconds())
		}
		if !unreachable {
			t.Errorf("%s: source_unreachable never fired during the fault", f.name)
		}
	} else if !progressed {
		t.Errorf("%s: nothing new became durable during %s of the fault: capture did not go on", f.name, f.lasts)
	}
	if n := proxy.accepted.Load() - conns; f.pulse > 0 && n == 0 {
		// The driver retries a read once on another connection, so a
		// reset rarely shows in the log: new connections prove it bit.
		t.Errorf("%s: the agent opened no new connection to the %s: the resets cut none of its connections", f.name, proxy.fronts)
	} else {
		t.Logf("%s: the agent opened %d new connections to the %s meanwhile", f.name, n, proxy.fronts)
	}

	// Back: the retry backoff (at most 10 s) plus one flush.
	newest := newestOplogTS(t, srv.Client())
	resume := 10*time.Second + oplog.DefaultStallTimeout
	waitDurable(t, a.Stats().LastDurable, newest, resume)
	t.Logf("%s: caught up %.1f s after the fault ended", f.name, time.Since(removed).Seconds())
}

// addToxics adds f's toxics to the proxy, unless they are there already.
func addToxics(t *testing.T, proxy *faultProxy, f netFault) {
	t.Helper()
	for _, js := range f.toxics {
		_, err := proxy.Toxics.AddToxicJson(strings.NewReader(js))
		if err != nil && !errors.Is(err, toxiproxy.ErrToxicAlreadyExists) {
			t.Fatalf("%s: add toxic %s: %v", f.name, js, err)
		}
	}
}

func since(began, at time.Time) string {
	if at.IsZero() {
		return "none"
	}
	return at.Sub(began).Round(100 * time.Millisecond).String()
}

// faultProxy is a toxiproxy TCP proxy that counts the connections it
// accepted (from its log: toxiproxy exposes no count).
type faultProxy struct {
	*toxiproxy.Proxy
	accepted atomic.Int64
	// fronts names what the proxy stands in front of, for messages.
	fronts string
}

func (p *faultProxy) Write(line []byte) (int, error) {
	if bytes.Contains(line, []byte("Accepted client")) {
		p.accepted.Add(1)
	}
	return len(line), nil
}

// startProxy starts a fault proxy in front of upstream (HOST:PORT) on a
// free local port, read from its Listen once started.
func startProxy(t *testing.T, upstream string) *faultProxy {
	t.Helper()
	// toxiproxy logs every toxic's start and end at trace level through
	// zerolog's global logger: keep test output to rewind's own lines.
	zerolog.SetGlobalLevel(zerolog.InfoLevel)
	p := &faultProxy{fronts: "source"}
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.New(p))
	p.Proxy = toxiproxy.NewProxy(server, "source", "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("start the fault proxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return p
}

// proxiedURI is srv's URI with its host replaced by the proxy's address,
// connected directly (the server's own host list would bypass the proxy).
func proxiedURI(srv *testserver.Server, addr string) string {
	uri := strings.Replace(srv.URI(), srv.Host(), addr, 1)
	if strings.Contains(uri, "directConnection=") {
		return uri
	}
	if strings.Contains(uri, "?") {
		return uri + "&directConnection=true"
	}
	if strings.Count(uri, "/") < 3 {
		uri += "/"
	}
	return uri + "?directConnection=true"
}

// stallWatch passes the agent's log to the test's and notes when capture
// reported a stalled connection.
type stallWatch struct {
	t      *testing.T
	mu     sync.Mutex
	stalls []time.Time
}

func (s *stallWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("stalled connection")) {
		s.mu.Lock()
		s.stalls = append(s.stalls, time.Now())
		s.mu.Unlock()
	}
	s.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// firstAfter is the first stall report at or after t, zero if none.
func (s *stallWatch) firstAfter(t time.Time) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, at := range s.stalls {
		if !at.Before(t) {
			return at
		}
	}
	return time.Time{}
}

// faultWorkload writes into the source (directly, not through the proxy)
// until finish, recording an oracle mark every third batch. After its
// first batch it takes the snapshot every mark is restored from: FerretDB
// logs no DDL, so the workload's collections and indexes must be in it.
type faultWorkload struct {
	dbs   []string
	rec   *oracle.Recorder
	stop  atomic.Bool
	done  chan error
	stats chan workload.Stats
}

var errWorkloadDone = errors.New("workload stopped by the test")

func startFaultWorkload(t *testing.T, srv *testserver.Server, r *repo.Repository, tweak ...func(*workload.Config, *oracle.Recorder)) *faultWorkload {
	t.Helper()
	cfg := srv.Workload(1717)
	cfg.Prefix, cfg.Databases, cfg.Collections, cfg.BatchSize = srv.DB("nf"), 1, 2, 10
	cfg.Duration, cfg.Rate = 10*time.Minute, 20
	w := &faultWorkload{dbs: workload.Databases(cfg), done: make(chan error, 1)}
	w.rec = &oracle.Recorder{Client: srv.Client(), Filter: oracle.Filter{Include: w.dbs}, Every: 3}
	for _, f := range tweak {
		f(&cfg, w.rec)
	}
	w.dbs = workload.Databases(cfg)
	w.rec.Filter = oracle.Filter{Include: w.dbs}
	w.stats = make(chan workload.Stats, 1)
	snapped := make(chan error, 1)
	first := true
	go func() {
		st, err := workload.Run(context.Background(), srv.Client(), cfg, func(ctx context.Context, b workload.Batch) error {
			if first {
				first = false
				snapped <- takeSnapshot(ctx, t, srv, r)
				return nil
			}
			if w.stop.Load() {
				return errWorkloadDone
			}
			return w.rec.OnBatch(ctx, b)
		})
		if first {
			snapped <- err
		}
		w.stats <- st
		w.done <- err
	}()
	if err := <-snapped; err != nil {
		t.Fatalf("snapshot after the first batch: %v", err)
	}
	return w
}

// finish stops the workload and returns its marks.
func (w *faultWorkload) finish(t *testing.T) []oracle.Mark {
	t.Helper()
	w.stop.Store(true)
	if err := <-w.done; !errors.Is(err, errWorkloadDone) {
		t.Fatalf("workload: %v", err)
	}
	if len(w.rec.Marks) < 3 {
		t.Fatalf("the workload recorded %d marks", len(w.rec.Marks))
	}
	return w.rec.Marks
}

// takeSnapshot takes a snapshot of srv, read directly, into the repository.
func takeSnapshot(ctx context.Context, t *testing.T, srv *testserver.Server, r *repo.Repository) error {
	src, err := source.Connect(ctx, srv.URI())
	if err != nil {
		return err
	}
	defer src.Close(ctx)
	_, err = snapshot.Take(ctx, src, r, snapshot.Options{WaitTimeout: time.Minute, Log: testLogger(t)})
	return err
}

// restoreMarkCLI restores dbs to mark m with the rewind command into
// target under names tagged with tag, and compares with the mark.
func restoreMarkCLI(t *testing.T, url string, dbs []string, m oracle.Mark, target *testserver.Server, tag string) {
	t.Helper()
	if err := restoreMark(t, url, dbs, m, target, tag); err != nil {
		t.Fatal(err)
	}
}

// restoreMark is restoreMarkCLI returning what went wrong.
func restoreMark(t *testing.T, url string, dbs []string, m oracle.Mark, target *testserver.Server, tag string) error {
	t.Helper()
	args := []string{"restore", "--repo", url, "--target", target.URI(), "--to", m.TS.String()}
	f := oracle.Filter{Include: dbs, Rename: map[string]string{}}
	for i, db := range dbs {
		to := target.DB(fmt.Sprintf("%s%d", tag, i))
		args = append(args, "--ns", db, "--rename", db+"="+to)
		f.Rename[db] = to
	}
	out, err := exec.Command(testbin.Rewind(t), args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("rewind restore to mark %d (%s): %v\n%s", m.N, m.TS, err, out)
	}
	if err := oracle.Compare(context.Background(), target.Client(), m, f); err != nil {
		return fmt.Errorf("restored to mark %d (%s), the state differs: %v\nrestore said:\n%s", m.N, m.TS, err, out)
	}
	return nil
}
