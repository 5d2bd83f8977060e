package agent_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The agent takes a snapshot at once on an empty repository, then every
// snapshot.every; each one's oplog range is in the repository.
func TestScheduledSnapshots(t *testing.T) {
	srv := testserver.Start(t)
	runWorkload(t, srv, 7, 100, "sched")
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	initRepo(t, url)
	cfg := agentConfig(t, srv, url)
	cfg.Snapshot.Every = config.Duration(3 * time.Second)
	cfg.Snapshot.Parallel = 2
	startAgent(t, cfg)

	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	must(t, err)
	deadline := time.Now().Add(90 * time.Second)
	var snaps []repo.SnapshotRef
	for len(snaps) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the agent took %d snapshots in 90 s with snapshot.every 3s, want 2", len(snaps))
		}
		time.Sleep(200 * time.Millisecond)
		snaps, err = r.ListSnapshots(ctx, "")
		must(t, err)
	}
	for _, ref := range snaps {
		m, err := r.ReadManifest(ctx, ref.Shard, ref.ID)
		must(t, err)
		var docs int64
		for _, c := range m.Collections {
			docs += c.Count
		}
		if docs == 0 || len(m.Collections) != 6 {
			t.Fatalf("snapshot %s holds %d documents in %d collections, want the workload's 6 collections", m.ID, docs, len(m.Collections))
		}
		h, err := r.History(ctx, m.Shard)
		must(t, err)
		ok := false
		for _, tl := range h.Timelines {
			ok = ok || (!tl.First.After(m.Start) && !tl.Last.Before(m.End))
		}
		if !ok {
			t.Fatalf("snapshot %s range [%s, %s] is not in one timeline", m.ID, m.Start, m.End)
		}
	}
	gap := snapshotTime(t, snaps[1].ID).Sub(snapshotTime(t, snaps[0].ID))
	if gap < 3*time.Second {
		t.Fatalf("snapshots %s and %s are %s apart, want at least snapshot.every (3s)", snaps[0].ID, snaps[1].ID, gap)
	}
}

func snapshotTime(t *testing.T, id string) time.Time {
	ts, err := time.Parse("20060102T150405Z", id[:16])
	must(t, err)
	return ts
}

// After a gap the agent takes a new snapshot at once, whatever the
// schedule says, and it lies on the timeline after the gap.
func TestSnapshotAfterGap(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("rollover cannot be simulated on an external replica set")
	}
	url := newRepo(t)
	cfg := agentConfig(t, srv, url)
	cfg.Snapshot.Every = config.Duration(time.Hour)
	runWorkload(t, srv, 20, 60, "a")
	a := startAgent(t, cfg)
	r := openRepo(t, url)
	waitSnapshots(t, r, 1)
	resume := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, resume, 30*time.Second)
	must(t, a.stop(t))

	runWorkload(t, srv, 21, 100, "b")
	firstKept := rollOver(t, srv, resume, 20)
	startAgent(t, cfg)
	snaps := waitSnapshots(t, r, 2)
	m, err := r.ReadManifest(context.Background(), snaps[1].Shard, snaps[1].ID)
	must(t, err)
	if m.Start.Before(firstKept) {
		t.Fatalf("the snapshot after the gap starts at %s, before the first entry after the gap %s", m.Start, firstKept)
	}
}

func openRepo(t *testing.T, url string) *repo.Repository {
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	must(t, err)
	return r
}

// waitSnapshots waits until the repository lists n snapshots.
func waitSnapshots(t *testing.T, r *repo.Repository, n int) []repo.SnapshotRef {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		snaps, err := r.ListSnapshots(context.Background(), "")
		must(t, err)
		if len(snaps) >= n {
			return snaps
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d snapshots after 90 s, want %d", len(snaps), n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
