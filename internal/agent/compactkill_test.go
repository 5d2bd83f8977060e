package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// tempPrefix starts the names of the file store's files being written.
const tempPrefix = ".rewind-tmp-"

// compactKillConfig is an agent that cuts 4 KiB segments and merges them,
// whatever their age, into 32 KiB ones: each start is followed by a
// compaction that writes and deletes for a while, which the test kills.
const compactKillConfig = `source: %q
repo: %q
capture:
  flush_interval: 50ms
  max_segment_bytes: 4096
  spool_dir: %q
  compact_interval: %s
  compact_after: 0s
  compact_target_bytes: 32768
snapshot:
  every: 0s
api:
  listen: ""
lock:
  refresh: 1s
  stale_after: 3s
`

// The agent is killed with SIGKILL during segment compaction, six times
// at seeded moments: three right after a merged segment appears (between
// its write and the deletion of its parts), three after a seeded number of
// segments merged away. After each kill,
// verify --read-data is healthy; at the end, after compaction finished,
// the repository holds the source's oplog byte for byte with no gap.
// REWIND_KILL_SEED replays the moments.
func TestKill9DuringCompaction(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("REWIND_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("seed %d (REWIND_KILL_SEED replays it)", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	began := time.Now()
	srv := testserver.Start(t)
	url := newRepo(t)
	dir := t.TempDir()
	config := func(every string) string {
		path := filepath.Join(dir, every+".yaml")
		must(t, os.WriteFile(path, fmt.Appendf(nil, compactKillConfig, srv.URI(), url, filepath.Join(dir, "spool"), every), 0o600))
		return path
	}

	// Many small segments, compaction off.
	p := startAgentProcess(t, "--config", config("0s"))
	runWorkload(t, srv, 31, 2000, "ck", func(c *workload.Config) { c.Rate, c.BatchSize = 600, 10 })
	newest := newestOplogTS(t, srv.Client())
	waitFor(t, time.Minute, "capture to catch up", func() bool { return !lastDurable(t, url).Before(newest) })
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exit %d:\n%s", code, p.stderrString())
	}
	// verify wants something restorable: a snapshot, taken now that the
	// workload made its collections (the test server logs no DDL).
	if out, err := exec.Command(testbin.Rewind(t), "snapshot", "--source", srv.URI(), "--repo", url).CombinedOutput(); err != nil {
		t.Fatalf("rewind snapshot: %v\n%s", err, out)
	}
	before := segmentFiles(t, url)
	t.Logf("%d segments before compaction (%s)", before, time.Since(began).Round(time.Millisecond))

	const kills = 6
	midway, hidden := 0, 0
	for i := range kills {
		p := startAgentProcess(t, "--config", config("300ms"))
		switch {
		case i%2 == 0 && visibleSegments(t, url) <= before/8:
			// Compaction may have nothing left to merge: kill at the
			// end state the final check waits for.
			waitFor(t, time.Minute, "the agent to start", func() bool { return strings.Contains(p.stderrString(), "agent started") })
		case i%2 == 0:
			// Right after a merged segment is written: its parts are
			// still there. The first such kill lands at once (deleting
			// the parts takes a few milliseconds: a seeded delay made
			// both chances miss in a CI run), later ones after a seeded
			// delay.
			waitMerged(t, url, p)
			if i > 0 {
				time.Sleep(time.Duration(rng.IntN(15)) * time.Millisecond)
			}
		default:
			// After a seeded number of segments merged away.
			// Near the end fewer than k merges may be left: then at the
			// end state the final check waits for.
			start, k := visibleSegments(t, url), 1+rng.IntN(12)
			waitFor(t, time.Minute, "compaction to go on", func() bool {
				v := visibleSegments(t, url)
				return v <= start-k || v <= before/8
			})
		}
		p.kill()
		raw, visible := segmentFiles(t, url), visibleSegments(t, url)
		if raw-visible > hidden {
			midway++ // a new merged segment and some of its parts: killed between the two
		}
		hidden = raw - visible
		t.Logf("kill %d at %s: %d segment objects, %d visible", i+1, time.Since(began).Round(time.Millisecond), raw, visible)
		out, err := exec.Command(testbin.Rewind(t), "verify", "--repo", url, "--read-data").CombinedOutput()
		if err != nil {
			t.Fatalf("verify --read-data after kill %d: %v\n%s", i+1, err, out)
		}
	}
	if midway == 0 {
		t.Errorf("no kill landed between a merged segment's write and its parts' deletion (seed %d)", seed)
	}

	// Compaction goes on to the end. The parts a kill left behind stay
	// hidden by their merged segment until prune removes them after its
	// grace period (internal/retention's orphan tests).
	p = startAgentProcess(t, "--config", config("300ms"))
	started := func() bool { return strings.Contains(p.stderrString(), "agent started") }
	waitFor(t, time.Minute, "the agent to start", started)
	waitFor(t, 2*time.Minute, "compaction to merge what is left", func() bool {
		return visibleSegments(t, url) <= before/8
	})
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exit %d:\n%s", code, p.stderrString())
	}
	t.Logf("compaction finished at %s", time.Since(began).Round(time.Millisecond))
	got, h := repoEntries(t, url)
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap, got %d and %+v", len(h.Timelines), h.Gaps)
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
	t.Logf("%d kills, %d between a merge's write and its deletes; %d segments compacted into %d", kills, midway, before, visibleSegments(t, url))
}

// waitMerged waits until compaction has written its first merged segment:
// a segment object that a listing hides less than all its raw files.
func waitMerged(t *testing.T, url string, p *agentProcess) {
	t.Helper()
	start := segmentFiles(t, url)
	deadline := time.Now().Add(30 * time.Second)
	for segmentFiles(t, url) == start {
		if time.Now().After(deadline) {
			t.Fatalf("compaction wrote nothing within 30 s; agent log:\n%s", p.stderrString())
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// segmentFiles counts the segment objects of a file repository.
func segmentFiles(t *testing.T, url string) int {
	t.Helper()
	n := 0
	root := filepath.Join(strings.TrimPrefix(url, "file://"), "oplog")
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && !strings.HasPrefix(d.Name(), tempPrefix) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatalf("count segment objects: %v", err)
	}
	return n
}

// visibleSegments counts the segments a reader sees (merged parts hidden).
func visibleSegments(t *testing.T, url string) int {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, url)
	must(t, err)
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	must(t, err)
	shards, err := r.Shards(ctx)
	if err != nil || len(shards) != 1 {
		t.Fatalf("shards = %v, %v; want exactly one", shards, err)
	}
	h, err := r.History(ctx, shards[0])
	must(t, err)
	n := 0
	for _, tl := range h.Timelines {
		n += len(tl.Segments)
	}
	return n
}
