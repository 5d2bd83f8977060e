package snapshot_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
)

// With an agent capturing, a snapshot taken by hand does not capture
// itself: it waits for the agent to store its range, on the agent's
// timeline.
func TestSnapshotWithRunningAgent(t *testing.T) {
	e := newEnv(t)
	e.workload(5, 100, "a")
	startAgent(t, e)
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

// startAgent runs an agent on e until the test ends, once it has written
// its first heartbeat.
func startAgent(t *testing.T, e *env) {
	t.Helper()
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
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := e.repo.ReadHeartbeat(context.Background(), e.src.Shard()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the agent wrote no heartbeat within 30 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitAgentPolled waits until the agent's heartbeat proves the oplog's
// newest entry as it is now (repo.PolledOplog) and says it is stored.
func waitAgentPolled(t *testing.T, e *env) optime.Timestamp {
	t.Helper()
	ctx := context.Background()
	newest, err := e.src.NewestEntry(ctx)
	must(t, err)
	mark, err := e.src.MarkOplog(ctx)
	must(t, err)
	deadline := time.Now().Add(30 * time.Second)
	for {
		hb, err := e.repo.ReadHeartbeat(ctx, e.src.Shard())
		if err == nil && hb.Polled != nil && *hb.Polled == (repo.PolledOplog{Count: mark.Count, Oldest: mark.Oldest, Newest: newest}) &&
			!hb.LastDurable.Before(newest) {
			return newest
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent's heartbeat does not prove the newest entry %s (mark %+v) within 30 s: %+v", newest, mark, hb)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Beside an agent caught up with an idle source that cannot seek its oplog
// by ts, a snapshot reads none of the oplog: its start and end are the
// newest entry of the agent's last poll, which the oplog's unchanged mark
// proves is still the newest.
func TestSnapshotBesideIdleAgentReadsNoOplog(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	e.workload(37, 80, "p")
	src, reads := countingSource(t, e)
	skipWhereOplogSeeks(t, src)
	startAgent(t, e)
	newest := waitAgentPolled(t, e)
	m, err := snapshot.Take(ctx, src, e.repo, snapshot.Options{Parallel: 2, WaitTimeout: time.Minute, Log: testLogger(t)})
	must(t, err)
	if m.Start != newest || m.End != newest {
		t.Fatalf("snapshot beside an idle agent: range [%s, %s], want [%s, %s]", m.Start, m.End, newest, newest)
	}
	assertCovered(t, e, m.Shard, m.Start, m.End)
	assertReads(t, reads, 0, "a snapshot beside an idle agent")
}

// A write during the copy changes the oplog's mark: the snapshot then reads
// its end from the oplog, and the range holds the write.
func TestSnapshotBesideAgentWithWriteDuringCopy(t *testing.T) {
	e := newEnv(t)
	e.workload(38, 80, "w")
	startAgent(t, e)
	waitAgentPolled(t, e)
	p, written := writeDuringCopy(t, e)
	m, err := e.take(snapshot.Options{Parallel: 2, Progress: p, WaitTimeout: time.Minute})
	must(t, err)
	assertHolds(t, m, written())
	assertCovered(t, e, m.Shard, m.Start, m.End)
}
