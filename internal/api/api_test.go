package api_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Every read endpoint answers in the envelope with what the repository
// holds; a snapshot requested over the API runs as a job that ends
// succeeded and shows up in the listings.
func TestEndpoints(t *testing.T) {
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))
	runWorkload(t, srv, 1, 200, "ep", nil)
	newest, err := oracle.LastOplogTS(t.Context(), srv.Client())
	must(t, err)
	waitFor(t, 60*time.Second, "capture reaches the workload's end", func() bool {
		return !c.a.Stats().LastDurable().Before(newest)
	})

	for _, p := range []string{"/-/healthy", "/-/ready"} {
		resp, err := http.Get(c.base + p) // never needs the token
		must(t, err)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s without a token: %d, want 200", p, resp.StatusCode)
		}
	}

	var st api.Status
	waitFor(t, 30*time.Second, "status shows the workload durable and a live agent", func() bool {
		c.get("/api/v1/status", &st)
		return st.LastDurable != nil && st.LastDurable.T >= newest.T && st.Agent != nil && st.Agent.Alive
	})
	if st.Segments == 0 || len(st.Timelines) != 1 || st.Timelines[0].Segments != st.Segments || st.Bytes == 0 ||
		st.LagSeconds == nil || len(st.Gaps) != 0 || st.Shard == "" || st.LastDurable.Time == "" {
		t.Fatalf("status = %+v", st)
	}

	a := c.do("POST", "/api/v1/snapshots", token, `{"parallel": 2}`)
	if a.Status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/snapshots: %d %s", a.Status, a.raw)
	}
	job := waitJob(t, c, "/api/v1/jobs/", a)
	if job.Kind != "snapshot" || job.Result == nil {
		t.Fatalf("snapshot job = %+v", job)
	}

	var jobs []api.Job
	c.get("/api/v1/jobs", &jobs)
	if len(jobs) != 1 || jobs[0].ID != job.ID || jobs[0].State != api.StateSucceeded {
		t.Fatalf("jobs = %+v, want the one snapshot job, succeeded", jobs)
	}
	var alerts alert.View
	c.get("/api/v1/alerts", &alerts)
	if alerts.Firing == nil || alerts.Recent == nil {
		t.Fatalf("alerts = %+v, want the firing and recent lists", alerts)
	}
	var snaps []api.Snapshot
	c.get("/api/v1/snapshots", &snaps)
	if len(snaps) != 1 || snaps[0].Documents == 0 || snaps[0].Collections != 4 || snaps[0].End == nil {
		t.Fatalf("snapshots = %+v, want one of the workload's 4 collections", snaps)
	}
	var tl api.TimelineView
	waitFor(t, 30*time.Second, "the timeline shows a window from the snapshot", func() bool {
		c.get("/api/v1/timeline", &tl)
		return len(tl.Windows) == 1
	})
	w := tl.Windows[0]
	if w.Snapshot != snaps[0].ID || w.From == nil || w.To == nil || w.From.T != snaps[0].End.T ||
		len(tl.Snapshots) != 1 || len(tl.Timelines) != 1 || len(tl.Span) != 1 || len(tl.Gaps) != 0 {
		t.Fatalf("timeline = %+v", tl)
	}
}

// waitJob polls a job (path + its id) until it ends, and fails the test
// unless it succeeded.
func waitJob(t *testing.T, c *client, path string, started answer) api.Job {
	t.Helper()
	var job api.Job
	must(t, json.Unmarshal(started.Data, &job))
	if job.State != api.StateRunning || job.ID == "" || job.Started.IsZero() || job.Ended != nil {
		t.Fatalf("a new job: %s", started.raw)
	}
	waitFor(t, 3*time.Minute, "job "+job.ID+" ends", func() bool {
		c.get(path+job.ID, &job)
		return job.State != api.StateRunning
	})
	if job.State != api.StateSucceeded || job.Ended == nil || job.Error != "" {
		t.Fatalf("job %s ended %s: %s", job.ID, job.State, job.Error)
	}
	return job
}

// Reads and writes need the bearer token; public_read opens reads (and
// /metrics) but never writes. Bad bodies and parameters get 400 with a
// message, unknown paths 404, all in the envelope.
func TestAuthAndBadRequests(t *testing.T) {
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))

	for _, p := range []string{"/api/v1/status", "/api/v1/timeline", "/api/v1/snapshots", "/api/v1/jobs", "/api/v1/restores/x", "/api/v1/alerts"} {
		// The answer says how to give the token and where the agent reads it.
		wantError(t, c.do("GET", p, "", ""), 401, "unauthorized", "no token was sent", "Authorization: Bearer", "api.token_file", "REWIND_API_TOKEN")
		wantError(t, c.do("GET", p, "wrong", ""), 401, "unauthorized", "not the agent's", "Authorization: Bearer")
	}
	wantError(t, c.do("POST", "/api/v1/snapshots", "", "{}"), 401, "unauthorized")
	wantError(t, c.do("POST", "/api/v1/restores", "wrong", `{"to": "latest", "dry_run": true}`), 401, "unauthorized")
	if code := httpStatus(t, c.base+"/metrics", ""); code != 401 {
		t.Fatalf("GET /metrics without the token: %d, want 401", code)
	}

	wantError(t, c.do("GET", "/api/v1/nothing", token, ""), 404, "not_found", "/api/v1/nothing")
	wantError(t, c.do("GET", "/elsewhere", token, ""), 404, "not_found")
	wantError(t, c.do("DELETE", "/api/v1/status", token, ""), 405, "method_not_allowed")
	wantError(t, c.do("GET", "/api/v1/restores/restore-nope", token, ""), 404, "not_found", "restore-nope")

	bad := []struct{ path, body, words string }{
		{"/api/v1/restores", `{"to": "latest",`, "JSON"},
		{"/api/v1/restores", `{"to": "latest", "dry_run": true, "typo": 1}`, "typo"},
		{"/api/v1/restores", `{"dry_run": true}`, "to is required"},
		{"/api/v1/restores", `{"to": "yesterday", "dry_run": true}`, "yesterday"},
		{"/api/v1/restores", `{"to": "latest"}`, "target is required"},
		{"/api/v1/restores", `{"to": "latest", "dry_run": true, "parallel": -1}`, "parallel"},
		{"/api/v1/restores", `{"to": "latest", "dry_run": true, "connect_timeout": "soon"}`, "connect_timeout"},
		{"/api/v1/restores", `{"to": "latest", "dry_run": true, "ns": ["a.b.c.*x"]}`, ""},
		{"/api/v1/restores", `{"to": "latest", "dry_run": true, "rename": {"a": ""}}`, "rename"},
		{"/api/v1/snapshots", `{"parallel": "two"}`, "parallel"},
		{"/api/v1/snapshots", `{"parallel": -3}`, "parallel"},
		{"/api/v1/snapshots", `[]`, "JSON"},
	}
	for _, b := range bad {
		a := c.do("POST", b.path, token, b.body)
		wantError(t, a, 400, "bad_request", b.words)
		if a.Error.Message == "" {
			t.Fatalf("POST %s %s: 400 without a message", b.path, b.body)
		}
	}
	// A well-formed restore to a point no window holds is refused with the reason.
	wantError(t, c.do("POST", "/api/v1/restores", token, `{"to": "2001-01-01T00:00:00Z", "dry_run": true}`), 422, "not_restorable")

	// public_read with the token in a file: reads open, writes still need it.
	cfg := agentConfig(t, srv)
	cfg.API.Token = ""
	cfg.API.TokenFile = filepath.Join(t.TempDir(), "token")
	must(t, os.WriteFile(cfg.API.TokenFile, []byte(token+"\n"), 0o600))
	cfg.API.PublicRead = true
	pub := startAgent(t, cfg)
	for _, p := range []string{"/api/v1/status", "/api/v1/timeline", "/api/v1/snapshots", "/api/v1/jobs", "/api/v1/alerts"} {
		if a := pub.do("GET", p, "", ""); a.Status != 200 {
			t.Fatalf("GET %s with public_read and no token: %d %s", p, a.Status, a.raw)
		}
	}
	if code := httpStatus(t, pub.base+"/metrics", ""); code != 200 {
		t.Fatalf("GET /metrics with public_read and no token: %d, want 200", code)
	}
	wantError(t, pub.do("POST", "/api/v1/snapshots", "", "{}"), 401, "unauthorized")
	if a := pub.do("POST", "/api/v1/restores", token, `{"to": "latest", "dry_run": true}`); a.Status != 422 {
		t.Fatalf("POST /api/v1/restores with the file's token: %d %s, want 422 (authorized, nothing to restore yet)", a.Status, a.raw)
	}
}

func httpStatus(t *testing.T, url, tok string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	must(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// /-/ready follows the source: 200 while it answers, 503 once it is down,
// 200 again when it is back; /-/healthy stays 200 (the process is fine).
func TestReadyFollowsSource(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("an external server cannot be stopped by the test")
	}
	c := startAgent(t, agentConfig(t, srv))
	if code := httpStatus(t, c.base+"/-/ready", ""); code != http.StatusOK {
		t.Fatalf("GET /-/ready with the source up: %d", code)
	}
	srv.Stop()
	waitFor(t, 30*time.Second, "/-/ready answers 503 with the source down", func() bool {
		return httpStatus(t, c.base+"/-/ready", "") == http.StatusServiceUnavailable
	})
	if code := httpStatus(t, c.base+"/-/healthy", ""); code != http.StatusOK {
		t.Fatalf("GET /-/healthy with the source down: %d", code)
	}
	srv.Restart()
	waitFor(t, 60*time.Second, "/-/ready answers 200 with the source back", func() bool {
		return httpStatus(t, c.base+"/-/ready", "") == http.StatusOK
	})
}
