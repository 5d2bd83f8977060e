package snapshot_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/snapshot"
)

// With an agent capturing, a snapshot taken by hand does not capture
// itself: it waits for the agent to store its range, on the agent's
// timeline.
func TestSnapshotWithRunningAgent(t *testing.T) {
	e := newEnv(t)
	e.workload(5, 100, "a")
	cfg := config.Default()
	cfg.API.Listen = "127.0.0.1:0" // tests run in parallel: never the shared default port
	cfg.Source = config.Secret(e.srv.URI())
	cfg.Repo = e.url
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	ctx, cancel := context.WithCancel(context.Background())
	a := &agent.Agent{Config: cfg, Log: testLogger(t), HeartbeatEvery: 500 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	}()
	// Wait for the agent's first heartbeat.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.repo.ReadHeartbeat(context.Background(), e.src.Shard()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent wrote no heartbeat within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.workload(6, 50, "b")
	m, err := e.take(snapshot.Options{WaitTimeout: time.Minute})
	must(t, err)
	assertCovered(t, e, m.Shard, m.Start, m.End)
	h, err := e.repo.History(context.Background(), m.Shard)
	must(t, err)
	if len(h.Timelines) != 1 {
		t.Fatalf("%d timelines, want only the agent's", len(h.Timelines))
	}
}
