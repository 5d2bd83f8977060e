package agent_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// The S3 server is down for 30 s while writes go on: capture continues into
// the spool, uploads catch up when storage returns, and the repository holds
// the source's oplog byte for byte.
func TestCaptureSurvivesStorageOutage(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	s3 := storagetest.StartS3(t)
	url := s3.BucketURL(s3.Bucket, "repo")
	initRepoWith(t, url, s3.Options())
	spool := filepath.Join(t.TempDir(), "spool")
	p := startAgentProcessEnv(t, s3.Env(), "--source", srv.URI(), "--repo", url,
		"--flush-interval", "200ms", "--spool-dir", spool)

	runWorkload(t, srv, 8, 100, "a")
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url, s3.Env()...) }, newestOplogTS(t, srv.Client()), 30*time.Second)

	s3.Stop()
	outage := time.Now()
	cfg := srv.Workload(9)
	cfg.Prefix, cfg.Duration, cfg.Rate = srv.DB("b"), 20*time.Second, 20
	if _, err := workload.Run(context.Background(), srv.Client(), cfg, nil); err != nil {
		t.Fatalf("workload during the outage: %v", err)
	}
	if n := spooled(t, spool); n == 0 {
		t.Fatalf("storage is down but the spool is empty: capture did not go on")
	} else {
		t.Logf("spool holds %d batches during the outage", n)
	}
	time.Sleep(time.Until(outage.Add(30 * time.Second)))
	s3.Start()

	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url, s3.Env()...) }, newest, 90*time.Second)
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exited %d after SIGTERM; stderr:\n%s", code, p.stderr)
	}
	if n := spooled(t, spool); n != 0 {
		t.Errorf("spool still holds %d batches after catching up", n)
	}
	got, h := repoEntriesWith(t, url, s3.Options())
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("want one timeline and no gap, got %d and %d", len(h.Timelines), len(h.Gaps))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}

func spooled(t *testing.T, dir string) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.bson"))
	if err != nil {
		t.Fatal(err)
	}
	return len(names)
}
