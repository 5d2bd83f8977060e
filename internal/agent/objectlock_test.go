package agent_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/storage/storagetest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The agent, given no flag about it, captures into an object-locked
// repository: every segment (and its index) carries the retention the
// repository's config names, its lock and heartbeat keep one version
// each, and after delete markers on every segment the captured oplog
// still reads back whole.
func TestAgentWritesLockedObjects(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	s3srv := storagetest.StartS3Locked(t)
	url := s3srv.BucketURL(s3srv.Bucket, "repo")
	ctx := context.Background()
	st, err := storage.OpenWith(ctx, url, s3srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = repo.Init(ctx, st, repo.InitOptions{Location: url, ObjectLock: &repo.ObjectLock{Mode: storage.LockCompliance, Days: 2}})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	p := startAgentProcessEnv(t, s3srv.Env(), "--source", srv.URI(), "--repo", url, "--flush-interval", "200ms")
	runWorkload(t, srv, 3, 100, "a")
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return lastDurable(t, url, s3srv.Env()...) }, newest, 30*time.Second)
	if code := p.terminate(t); code != 0 {
		t.Fatalf("agent exited %d; stderr:\n%s", code, p.stderr)
	}

	cl, bucket := s3srv.Client(), aws.String(s3srv.Bucket)
	vs, err := cl.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bucket, Prefix: aws.String("repo/")})
	if err != nil {
		t.Fatal(err)
	}
	perKey := map[string]int{}
	segments := 0
	for _, v := range vs.Versions {
		key := strings.TrimPrefix(aws.ToString(v.Key), "repo/")
		perKey[key]++
		if repo.MutableKey(key) {
			continue
		}
		ret, err := cl.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: bucket, Key: v.Key, VersionId: v.VersionId})
		if err != nil || ret.Retention.Mode != "COMPLIANCE" || time.Until(*ret.Retention.RetainUntilDate) < 47*time.Hour {
			t.Fatalf("%s written by the agent: retention %+v, %v; want COMPLIANCE for 2 days", key, ret, err)
		}
		if strings.HasPrefix(key, "oplog/") {
			segments++
			if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: bucket, Key: v.Key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for key, n := range perKey {
		if repo.MutableKey(key) && n != 1 {
			t.Errorf("%s has %d versions, want 1", key, n)
		}
	}
	if segments == 0 {
		t.Fatal("the agent wrote no segment")
	}
	got, h := repoEntriesWith(t, url, s3srv.Options())
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("after delete markers on %d segments: %d timelines, %d gaps; want 1 and 0", segments, len(h.Timelines), len(h.Gaps))
	}
	assertSameEntries(t, got, sourceOplog(t, srv.Client(), h.Timelines[0].First, newest))
}
