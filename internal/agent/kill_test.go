package agent_test

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// The agent is killed with SIGKILL at random moments ten times while a
// workload runs, and restarted each time: the repository still holds the
// source's oplog byte for byte, nothing missing, nothing repeated.
func TestCaptureSurvivesKill9(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	srv := testserver.Start(t)
	url := newRepo(t)
	args := []string{"--source", srv.URI(), "--repo", url, "--flush-interval", "200ms",
		"--spool-dir", filepath.Join(t.TempDir(), "spool")}

	done := make(chan error, 1)
	go func() {
		cfg := srv.Workload(7)
		cfg.Prefix, cfg.Ops = srv.DB("a"), 1200
		_, err := workload.Run(context.Background(), srv.Client(), cfg, nil)
		done <- err
	}()
	kills := 0
	for kills < 10 {
		p := startAgentProcess(t, args...)
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		p.kill()
		kills++
	}
	if err := <-done; err != nil {
		t.Fatalf("workload: %v", err)
	}
	p := startAgentProcess(t, args...)
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url) }, newest, 60*time.Second)
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exited %d after SIGTERM, want 0; stderr:\n%s", code, p.stderr)
	}
	got, h := repoEntries(t, url)
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap after %d kills, got %d timelines, %d gaps", kills, len(h.Timelines), len(h.Gaps))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}
