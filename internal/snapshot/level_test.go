package snapshot_test

import (
	"bytes"
	"context"
	"io"
	"path/filepath"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A snapshot's chunks are compressed at the level the repository records:
// the same chunk (the same plaintext) taken into repositories made with
// each level is stored as different bytes, and reads back the same.
func TestSnapshotUsesTheRepositoryLevel(t *testing.T) {
	e := newEnv(t)
	// Large values (half random, half repeated text) give chunks big
	// enough for the levels to compress differently.
	cfg := e.workload(3, 300, "lvl", func(c *workload.Config) { c.LargeEvery, c.LargeSize = 4, 32<<10 })
	ctx := context.Background()
	filter, err := snapshot.ParseFilter(workload.Databases(cfg), nil)
	must(t, err)
	stored := map[string]map[string][]byte{} // plaintext sha256 -> level -> stored object
	for _, level := range repo.Levels {
		url := "file://" + filepath.Join(t.TempDir(), level)
		st, err := storage.Open(ctx, url)
		must(t, err)
		t.Cleanup(func() { st.Close() })
		r, err := repo.Init(ctx, st, repo.InitOptions{Location: url, Level: level})
		must(t, err)
		if got := r.Config().Level; got != level {
			t.Fatalf("repository made with level %s records %q", level, got)
		}
		e.repo = r
		m, err := e.take(snapshot.Options{Parallel: 2, Filter: filter})
		must(t, err)
		for _, cm := range m.Collections {
			ns := cm.DB + "." + cm.Name
			assertSameDocs(t, ns, snapshotDocs(t, r, cm), sourceDocs(t, e.srv.Client(), cm.DB, cm.Name))
			for _, ch := range cm.Chunks {
				rc, err := st.Get(ctx, ch.Key)
				must(t, err)
				obj, err := io.ReadAll(rc)
				rc.Close()
				must(t, err)
				sum := string(ch.SHA256)
				if stored[sum] == nil {
					stored[sum] = map[string][]byte{}
				}
				stored[sum][level] = obj
			}
		}
	}
	// Without the setting every level would store every chunk as the same
	// bytes; a tiny chunk may still come out the same at two levels.
	compared, differ := 0, map[string]int{}
	for _, byLevel := range stored {
		if len(byLevel) != len(repo.Levels) {
			continue // a chunk whose documents came out in another order
		}
		compared++
		f, d, b := byLevel[repo.LevelFastest], byLevel[repo.LevelDefault], byLevel[repo.LevelBetter]
		if !bytes.Equal(f, d) {
			differ["fastest/default"]++
		}
		if !bytes.Equal(d, b) {
			differ["default/better"]++
		}
	}
	if compared == 0 || differ["fastest/default"] == 0 || differ["default/better"] == 0 {
		t.Fatalf("of %d chunks taken with the same documents at every level, %v differ between levels: the level does not reach the snapshot", compared, differ)
	}
}
