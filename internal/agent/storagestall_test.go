package agent_test

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// uploadWatch passes the agent's log to the test's and notes when an
// upload was abandoned.
type uploadWatch struct {
	t      *testing.T
	mu     sync.Mutex
	failed []time.Time
}

func (u *uploadWatch) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("upload segment failed")) {
		u.mu.Lock()
		u.failed = append(u.failed, time.Now())
		u.mu.Unlock()
	}
	u.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func (u *uploadWatch) firstAfter(at time.Time) time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, f := range u.failed {
		if !f.Before(at) {
			return f
		}
	}
	return time.Time{}
}

// A storage connection that stalls (the S3 server's data blackholed by a
// fault proxy, the sockets kept open) does not hang capture: the upload
// is abandoned after capture.upload_stall_after plus its size at 32 KiB/s
// and retried, the lock's refresh and the heartbeat are bounded by their
// periods, and once the stall ends the repository catches up with the
// source's oplog byte for byte.
func TestUploadSurvivesStalledStorage(t *testing.T) {
	srv := testserver.Start(t)
	s3 := storagetest.StartS3(t)
	proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint(), "http://"))
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	direct := s3.BucketURL(s3.Bucket, "repo")
	initRepoWith(t, direct, s3.Options())
	cfg := agentConfig(t, srv, strings.Replace(direct, s3.Endpoint(), "http://"+proxy.Listen, 1))
	cfg.Snapshot.Every = 0
	cfg.Capture.UploadStallAfter = config.Duration(2 * time.Second)
	cfg.Lock = config.Lock{Refresh: config.Duration(2 * time.Second), StaleAfter: config.Duration(60 * time.Second)}
	logs := &uploadWatch{t: t}
	a := startAgentLogging(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	runWorkload(t, srv, 41, 40, "before")
	waitDurable(t, a.Stats().LastDurable, newestOplogTS(t, srv.Client()), 60*time.Second)

	addToxics(t, proxy, netFault{name: "storage blackhole", toxics: []string{
		`{"name": "down", "type": "timeout", "stream": "downstream", "attributes": {"timeout": 0}}`,
		`{"name": "up", "type": "timeout", "stream": "upstream", "attributes": {"timeout": 0}}`}})
	began := time.Now()
	runWorkload(t, srv, 42, 40, "during")
	waitFor(t, 20*time.Second, "an upload abandoned as stalled", func() bool { return !logs.firstAfter(began).IsZero() })
	t.Logf("first upload abandoned %s after the stall began", logs.firstAfter(began).Sub(began).Round(100*time.Millisecond))
	for time.Since(began) < 12*time.Second {
		time.Sleep(100 * time.Millisecond) // (the stall lasts 12 s: several uploads abandoned)
	}
	for _, name := range []string{"down", "up"} {
		must(t, proxy.Toxics.RemoveToxic(t.Context(), name))
	}
	ended := time.Now()
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, a.Stats().LastDurable, newest, 60*time.Second)
	t.Logf("caught up %s after the stall ended", time.Since(ended).Round(100*time.Millisecond))

	got, h := repoEntriesWith(t, direct, s3.Options())
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("%d timelines, %d gaps after a storage stall; want one and none", len(h.Timelines), len(h.Gaps))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), optime.Zero, newest))
}

// The agent uploads to S3 (versitygw) through a fault proxy while a
// workload writes: 500 ms latency, 100 KB/s, and connection resets every
// 2 s, one after another (the blackhole is TestUploadSurvivesStalledStorage's).
// Uploads go on during each, slower, and catch up after it; at the end the
// repository holds the source's oplog byte for byte with no gap, and
// restores to random marks are exact.
func TestUploadUnderStorageNetworkFaults(t *testing.T) {
	srv := testserver.Start(t)
	s3 := storagetest.StartS3(t)
	proxy := startProxy(t, strings.TrimPrefix(s3.Endpoint(), "http://"))
	proxy.fronts = "S3 server"
	for _, kv := range s3.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v) // for the restores, which run the rewind binary
	}
	direct := s3.BucketURL(s3.Bucket, "repo")
	initRepoWith(t, direct, s3.Options())
	cfg := agentConfig(t, srv, strings.Replace(direct, s3.Endpoint(), "http://"+proxy.Listen, 1))
	cfg.Snapshot.Every = 0 // one snapshot, by hand and direct, after the workload made its collections
	logs := &stallWatch{t: t}
	a := startAgentLogging(t, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	waitFor(t, 30*time.Second, "the agent's start", func() bool { return a.Alerts() != nil })

	w := startFaultWorkload(t, srv, openRepo(t, direct))
	for _, f := range netFaults {
		if !f.stalls {
			runFault(t, a, proxy, logs, srv, f)
		}
	}
	checkAfterFaults(t, a, srv, w, direct, s3.Options(), "sf")
}
