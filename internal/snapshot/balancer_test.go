package snapshot

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// fakeRouter answers the balancer commands as mongos documents them
// (balancerStatus: {mode: "full"|"off", inProgress: bool}; balancerStop
// and balancerStart: {ok: 1}), and records the commands sent. The test
// server cannot play mongos: FerretDB refuses balancerStop (see
// TestTestServerRefusesBalancerStop), so the replies are injected at
// RouterCommand, the one function that sends them.
type fakeRouter struct {
	mu       sync.Mutex
	mode     string
	busy     int // balancerStatus answers inProgress true this many times
	failStop error
	sent     []string
}

func (f *fakeRouter) run(_ context.Context, cmd bson.D) (bson.Raw, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, cmd[0].Key)
	switch cmd[0].Key {
	case "balancerStatus":
		busy := f.busy > 0
		f.busy--
		return bson.Marshal(bson.D{{Key: "mode", Value: f.mode}, {Key: "inProgress", Value: busy}, {Key: "ok", Value: 1}})
	case "balancerStop":
		f.mode = "off"
		if f.failStop != nil {
			return nil, f.failStop
		}
	case "balancerStart":
		f.mode = "full"
	}
	return bson.Marshal(bson.D{{Key: "ok", Value: 1}})
}

func (f *fakeRouter) commands() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.sent, ",")
}

func testRepo(t *testing.T) *repo.Repository {
	t.Helper()
	ctx := context.Background()
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r, err := repo.Init(ctx, st, repo.InitOptions{Location: url})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func recorded(t *testing.T, r *repo.Repository) bool {
	t.Helper()
	_, ok, err := r.ReadBalancerRecord(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// The balancer's state machine: stop records first, waits for the running
// migration, and restart re-enables and removes the record; a balancer
// already off is left off; a failed balancerStop is still followed by
// balancerStart; a record left by a crash is acted on first.
func TestBalancerStateMachine(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	r := testRepo(t)
	f := &fakeRouter{mode: "full", busy: 2} // the migration runs until the second poll after balancerStop
	b := &balancer{run: f.run, repo: r, timeout: 5 * time.Second, log: log}
	state, err := b.stop(ctx, "20260101T000000Z-00000001")
	if err != nil || state != repo.BalancerStopped || !recorded(t, r) {
		t.Fatalf("stop: state %q, %v, recorded %v", state, err, recorded(t, r))
	}
	if err := b.restart(ctx); err != nil || recorded(t, r) || f.mode != "full" {
		t.Fatalf("restart: %v, recorded %v, mode %s", err, recorded(t, r), f.mode)
	}
	if got := f.commands(); got != "balancerStatus,balancerStop,balancerStatus,balancerStatus,balancerStart" {
		t.Errorf("commands %s", got)
	}

	f = &fakeRouter{mode: "off"}
	b = &balancer{run: f.run, repo: r, timeout: 5 * time.Second, log: log}
	if state, err := b.stop(ctx, "x"); err != nil || state != repo.BalancerWasOff || recorded(t, r) {
		t.Fatalf("balancer off already: %q, %v", state, err)
	}
	if err := b.restart(ctx); err != nil || f.mode != "off" {
		t.Fatalf("a balancer the operator turned off was turned on: %v, mode %s", err, f.mode)
	}

	f = &fakeRouter{mode: "full", failStop: errors.New("operation exceeded time limit")}
	b = &balancer{run: f.run, repo: r, timeout: 5 * time.Second, log: log}
	if _, err := b.stop(ctx, "x"); err == nil || !strings.Contains(err.Error(), "balancerStop") {
		t.Fatalf("failed balancerStop: %v", err)
	}
	if err := b.restart(ctx); err != nil || f.mode != "full" || recorded(t, r) {
		t.Fatalf("after a failed balancerStop: %v, mode %s, recorded %v", err, f.mode, recorded(t, r))
	}

	// A crash: the record is there, the balancer off. The next run
	// re-enables it before anything else.
	if err := r.WriteBalancerRecord(ctx, repo.BalancerRecord{Stopped: time.Now(), Snapshot: "x", Host: "h", PID: 1}); err != nil {
		t.Fatal(err)
	}
	f = &fakeRouter{mode: "off"}
	b = &balancer{run: f.run, repo: r, timeout: 5 * time.Second, log: log}
	if err := b.recover(ctx); err != nil || f.mode != "full" || recorded(t, r) || f.commands() != "balancerStart" {
		t.Fatalf("recover: %v, mode %s, recorded %v, commands %s", err, f.mode, recorded(t, r), f.commands())
	}
}

// A cluster snapshot that fails after stopping the balancer (here a shard
// whose connection is closed) re-enables it, and one interrupted with
// the record left re-enables it at its next start.
func TestClusterSnapshotReenablesBalancer(t *testing.T) {
	ctx := context.Background()
	d := closedDeployment(t)
	r := testRepo(t)
	f := &fakeRouter{mode: "full"}
	o := ClusterOptions{Options: Options{Log: slog.New(slog.DiscardHandler)}, Router: f.run, BalancerTimeout: 5 * time.Second}
	if _, err := TakeCluster(ctx, d, r, o); err == nil {
		t.Fatal("a cluster snapshot of a closed shard succeeded")
	}
	if f.mode != "full" || recorded(t, r) || !strings.HasSuffix(f.commands(), "balancerStart") {
		t.Fatalf("after a failure: mode %s, recorded %v, commands %s", f.mode, recorded(t, r), f.commands())
	}
}

// FerretDB (the test server) refuses balancerStop: no server here can play
// mongos, which is why the balancer's replies are injected above.
func TestTestServerRefusesBalancerStop(t *testing.T) {
	s := testserver.Start(t)
	if s.External() {
		t.Skip("$REWIND_TEST_MONGODB_URI is a real deployment: balancerStop is not sent to it by tests (it would stop its balancer)")
	}
	_, err := RouterCommandOf(s.Client())(context.Background(), bson.D{{Key: "balancerStop", Value: 1}})
	if err == nil {
		t.Fatal("the test server accepted balancerStop: the balancer tests could use it instead of injected replies")
	}
	t.Logf("the test server refuses balancerStop: %v", err)
}

// closedDeployment is a one-shard cluster whose shard's connection is
// closed: every read of it fails.
func closedDeployment(t *testing.T) *source.Deployment {
	t.Helper()
	s := testserver.Start(t)
	src, err := source.Connect(context.Background(), s.URI())
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	sh := cluster.Shard{Name: "s0", URI: s.URI()}
	return &source.Deployment{Cluster: &cluster.Topology{Shards: []cluster.Shard{sh}}, Members: []source.Member{{Shard: sh, Source: src}}}
}
