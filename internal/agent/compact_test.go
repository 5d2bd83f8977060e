package agent_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Compaction merges small segments while capture goes on; a reader listing
// the timeline all the while never sees a hole or an overlap, and the
// entries stay byte for byte those of the source.
func TestCompactionKeepsTimelineWhole(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	cfg := agentConfig(t, srv, url)
	cfg.Capture.FlushInterval = config.Duration(100 * time.Millisecond)
	cfg.Capture.CompactInterval = config.Duration(700 * time.Millisecond)
	cfg.Capture.CompactAfter = 0
	cfg.Capture.CompactTargetBytes = 256 << 10
	a := startAgent(t, cfg)

	ctx, stopReader := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var listings, shrinks atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		watchTimeline(t, ctx, url, &listings, &shrinks)
	}()
	runWorkload(t, srv, 12, 300, "a")
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, newest, 30*time.Second)
	// Compaction runs every 700 ms over segments of any age: wait until a
	// listing has seen it merge, while the reader checks every listing.
	deadline := time.Now().Add(30 * time.Second)
	for shrinks.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	must(t, a.stop(t))
	stopReader()
	wg.Wait()
	if shrinks.Load() == 0 {
		t.Fatalf("compaction never merged segments in %d listings", listings.Load())
	}
	t.Logf("%d listings checked, %d saw fewer segments than the one before", listings.Load(), shrinks.Load())
	got, h := repoEntries(t, url)
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}

// watchTimeline lists the segments until ctx ends and checks every listing:
// sorted, no overlap, and every range an earlier listing showed is still
// covered (no hole). It counts the listings it made and those that had
// fewer segments than the previous one.
func watchTimeline(t *testing.T, ctx context.Context, url string, listings, shrinks *atomic.Int64) {
	st, err := storage.Open(context.Background(), url)
	if err != nil {
		t.Error(err)
		return
	}
	defer st.Close()
	r, err := repo.Open(context.Background(), st, repo.OpenOptions{})
	if err != nil {
		t.Error(err)
		return
	}
	var seen []repo.SegmentInfo
	prev := 0
	for ctx.Err() == nil {
		segs, err := r.ListSegments(context.Background(), "ferretdb")
		if err != nil {
			t.Errorf("list segments: %v", err)
			return
		}
		n := listings.Add(1)
		for i := 1; i < len(segs); i++ {
			if !segs[i].First.After(segs[i-1].Last) {
				t.Errorf("listing %d: segment %s overlaps %s", n, segs[i].Key, segs[i-1].Key)
			}
		}
		for _, old := range seen {
			if !covered(segs, old) {
				t.Errorf("listing %d: range %s..%s listed before is no longer covered: a hole", n, old.First, old.Last)
			}
		}
		if len(segs) < prev {
			shrinks.Add(1)
		}
		prev = len(segs)
		seen = append(seen[:0], segs...)
		time.Sleep(20 * time.Millisecond) // a listing pace, not a wait for anything
	}
}

func covered(segs []repo.SegmentInfo, s repo.SegmentInfo) bool {
	for _, c := range segs {
		if !s.First.Before(c.First) && !c.Last.Before(s.Last) {
			return true
		}
	}
	return false
}
