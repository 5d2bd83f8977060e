package agent_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// The concatenation of all segments equals the source's oplog over the same
// range, byte for byte, with a workload running while capture runs.
func TestCaptureEqualsSourceOplog(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	a := startAgent(t, agentConfig(t, srv, url))
	debugInfo = func() string {
		st := a.Stats()
		return fmt.Sprintf("read %s timeline %s err %q segs %d", st.LastRead(), st.Timeline(), st.LastError(), st.Segments.Load())
	}
	runWorkload(t, srv, 1, 600, "a", func(c *workload.Config) { c.LargeEvery = 100 })
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, newest, 30*time.Second)
	must(t, a.stop(t))

	got, h := repoEntries(t, url)
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap, got %d timelines and %d gaps", len(h.Timelines), len(h.Gaps))
	}
	if h.Timelines[0].Info == nil || h.Timelines[0].Info.Flavor == "" {
		t.Fatalf("timeline record with the source flavor is missing: %+v", h.Timelines[0].Info)
	}
	first := h.Timelines[0].First
	want := sourceOplog(t, srv.Client(), first, newest)
	if len(want) < 600 {
		t.Fatalf("the source oplog holds only %d entries for 600 writes", len(want))
	}
	assertSameEntries(t, got, want)
}

// A test server restart in the middle of capture: the agent reconnects and
// resumes with nothing lost.
func TestCaptureSurvivesServerRestart(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	if srv.External() {
		t.Log("external server: restart part not possible; the test checks plain capture")
	}
	url := newRepo(t)
	a := startAgent(t, agentConfig(t, srv, url))
	runWorkload(t, srv, 2, 200, "a")
	if !srv.External() {
		srv.Kill() // whenever the agent notices, it must reconnect and resume
		srv.Restart()
	}
	runWorkload(t, srv, 3, 200, "b")
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, newest, 60*time.Second)
	must(t, a.stop(t))
	got, h := repoEntries(t, url)
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}

// A clean stop (SIGTERM's path) flushes what was read, and the next start
// resumes right after it.
func TestCaptureResumesAfterCleanStop(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	url := newRepo(t)
	cfg := agentConfig(t, srv, url)
	cfg.Capture.FlushInterval = 10 * 1e9 // long: only the stop can flush
	a := startAgent(t, cfg)
	runWorkload(t, srv, 4, 150, "a")
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastRead, newest, 30*time.Second) // read, not yet flushed
	if a.Stats().LastDurable() == newest {
		t.Fatal("the newest entry was flushed before the stop: flush_interval is not long enough for this test")
	}
	must(t, a.stop(t))
	if got := a.Stats().LastDurable(); got != newest {
		t.Fatalf("after a clean stop the last durable entry is %s, want the newest read %s", got, newest)
	}
	runWorkload(t, srv, 5, 150, "b")
	b := startAgent(t, agentConfig(t, srv, url))
	newest = newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return b.Stats().LastDurable() }, newest, 30*time.Second)
	must(t, b.stop(t))
	got, h := repoEntries(t, url)
	if len(h.Timelines) != 1 {
		t.Fatalf("want one timeline, got %d", len(h.Timelines))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}
