package agent_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The agent prunes on its own every retention.prune_interval while it
// captures: an old snapshot outside the window and an old orphan go; the
// newest snapshot stays; a prune by hand is refused while the agent runs.
func TestAgentPrunes(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	must(t, err)
	older := writeOldSnapshot(t, r, 30)
	newer := writeOldSnapshot(t, r, 20)
	// The chunk of a snapshot that never got its manifest, three days ago.
	orphan, err := r.WriteChunk(ctx, "ferretdb", "20261020T000000Z-00000003", "c0", 0, []bson.Raw{mustDoc(t)})
	must(t, err)
	dir := strings.TrimPrefix(url, "file://")
	long := time.Now().Add(-72 * time.Hour)
	must(t, os.Chtimes(filepath.Join(dir, orphan.Key), long, long))

	cfg := agentConfig(t, srv, url)
	cfg.Retention = config.Retention{RestoreWindow: config.Duration(7 * 24 * time.Hour), PruneInterval: config.Duration(300 * time.Millisecond)}
	cfg.Snapshot.Every = 0 // only the test's own snapshots: the newest of them must stay
	a := startAgent(t, cfg)
	runWorkload(t, srv, 3, 50, "a")
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, errOld := st.Stat(ctx, "snapshots/ferretdb/"+older.ID)
		_, errOrphan := st.Stat(ctx, orphan.Key)
		if errors.Is(errOld, storage.ErrNotFound) && errors.Is(errOrphan, storage.ErrNotFound) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the agent did not prune within 20 s: old snapshot %v, orphan %v", errOld, errOrphan)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, err := st.Stat(ctx, "snapshots/ferretdb/"+newer.ID); err != nil {
		t.Fatalf("the newest snapshot was pruned: %v", err)
	}
	if _, err := st.Stat(ctx, older.Collections[0].Chunks[0].Key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the pruned snapshot's chunk is still there: %v", err)
	}
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "prune"})
	if !errors.Is(err, repo.ErrLocked) || !strings.Contains(err.Error(), "agent") {
		if lock != nil {
			lock.Unlock(ctx)
		}
		t.Fatalf("prune by hand while the agent runs: %v; want refused, naming the agent", err)
	}
	must(t, a.stop(t))
}

func mustDoc(t *testing.T) bson.Raw {
	d, err := bson.Marshal(bson.D{{Key: "_id", Value: 2}})
	must(t, err)
	return d
}
