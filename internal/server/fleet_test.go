package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/server"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// recorded is a workload run on one source with the marks it recorded.
type recorded struct {
	dbs   []string
	marks []oracle.Mark
}

// write runs a workload on srv (databases named after part) recording a
// mark every few batches. first, when set, runs after the first batch and
// before any mark: FerretDB logs no DDL, so a snapshot taken there holds
// the workload's collections and indexes, and every mark after it can be
// restored exactly.
func write(t *testing.T, srv *testserver.Server, seed uint64, part string, first func()) recorded {
	t.Helper()
	cfg := srv.Workload(seed)
	cfg.Prefix, cfg.Ops, cfg.Databases, cfg.Collections, cfg.BatchSize = srv.DB(part), 120, 1, 2, 10
	dbs := workload.Databases(cfg)
	rec := &oracle.Recorder{Client: srv.Client(), Filter: oracle.Filter{Include: dbs}, Every: 3}
	_, err := workload.Run(t.Context(), srv.Client(), cfg, func(ctx context.Context, b workload.Batch) error {
		if first != nil {
			first()
			first = nil
			return nil
		}
		return rec.OnBatch(ctx, b)
	})
	if err != nil {
		t.Fatalf("workload on %s: %v", srv.URI(), err)
	}
	if len(rec.Marks) < 2 {
		t.Fatalf("the workload recorded %d marks", len(rec.Marks))
	}
	return recorded{dbs: dbs, marks: rec.Marks}
}

// durable reports whether the deployment's last durable timestamp has
// reached ts, from its own status (GET /api/v1/deployments/NAME/status:
// the list's summaries are cached for a few seconds).
func (f *fleet) durable(name string, ts optime.Timestamp) bool {
	a := f.do("GET", "/api/v1/deployments/"+name+"/status", "")
	var st api.Status
	if a.Status != http.StatusOK || json.Unmarshal(a.Data, &st) != nil {
		f.t.Fatalf("GET status of %s: %d %s", name, a.Status, a.raw)
	}
	return st.LastDurable != nil && !(optime.Timestamp{T: st.LastDurable.T, I: st.LastDurable.I}).Before(ts)
}

// snapshot takes a snapshot through the deployment's API and waits for it.
func (f *fleet) snapshot(name string) {
	f.t.Helper()
	base := "/api/v1/deployments/" + name
	a := f.do("POST", base+"/snapshots", "")
	if a.Status != http.StatusAccepted {
		f.t.Fatalf("POST %s/snapshots: %d %s", base, a.Status, a.raw)
	}
	f.waitJob(base+"/jobs/", a)
}

// waitJob waits for a job started by a, and fails the test unless it
// succeeded.
func (f *fleet) waitJob(path string, a answer) {
	f.t.Helper()
	var job api.Job
	must(f.t, json.Unmarshal(a.Data, &job))
	waitFor(f.t, 3*time.Minute, "job "+job.ID, func() bool {
		a = f.do("GET", path+job.ID, "")
		must(f.t, json.Unmarshal(a.Data, &job))
		return job.State != api.StateRunning
	})
	if job.State != api.StateSucceeded {
		f.t.Fatalf("job %s (%s) ended %s: %s", job.ID, path, job.State, job.Error)
	}
}

// restoreMark restores the deployment to a mark through its API under the
// server (/api/v1/deployments/NAME/restores) into target, under new
// names, and compares with the mark.
func (f *fleet) restoreMark(name string, w recorded, m oracle.Mark, target *testserver.Server, tag string) {
	f.t.Helper()
	rename := map[string]string{}
	for i, db := range w.dbs {
		rename[db] = target.DB(fmt.Sprintf("%s%d", tag, i))
	}
	body, err := json.Marshal(api.RestoreRequest{Target: target.URI(), To: m.TS.String(), NS: w.dbs, Rename: rename})
	must(f.t, err)
	base := "/api/v1/deployments/" + name
	a := f.do("POST", base+"/restores", string(body))
	if a.Status != http.StatusAccepted {
		f.t.Fatalf("POST %s/restores: %d %s", base, a.Status, a.raw)
	}
	f.waitJob(base+"/restores/", a)
	if err := oracle.Compare(f.t.Context(), target.Client(), m, oracle.Filter{Include: w.dbs, Rename: rename}); err != nil {
		f.t.Fatalf("deployment %s restored to mark %d (%s) differs: %v", name, m.N, m.TS, err)
	}
}

// Three sources, one rewind server: all three capture into repositories
// the server creates; each restores exactly to random marks through its
// own API under /api/v1/deployments/NAME/; a stopped source leaves the
// other two capturing as fast as before, with source_unreachable naming
// the broken one; a fourth deployment added with POST captures without
// restarting the others and survives a server restart; and bad requests
// are refused with nothing saved.
func TestFleetOfThree(t *testing.T) {
	srvs := []*testserver.Server{testserver.Start(t), testserver.Start(t), testserver.Start(t)}
	if srvs[0].External() {
		t.Skip("stops one source's server: needs the test servers, not REWIND_TEST_MONGODB_URI")
	}
	names := []string{"alpha", "beta", "gamma"}
	dir := t.TempDir()
	stateDir := filepath.Join(dir, "state")
	file := header(stateDir)
	for i, n := range names {
		file += entry(n, srvs[i], dir)
	}
	f := startFleet(t, file)
	f.waitCapturing(90*time.Second, names...)

	// Every deployment captures its own workload, and restores exactly.
	target := testserver.Start(t)
	rng := rand.New(rand.NewPCG(7, 11))
	for i, n := range names {
		w := write(t, srvs[i], uint64(i+1), "w", func() { f.snapshot(n) })
		last := w.marks[len(w.marks)-1]
		waitFor(t, 60*time.Second, n+" captures its last mark", func() bool { return f.durable(n, last.TS) })
		for j := range 2 {
			f.restoreMark(n, w, w.marks[rng.IntN(len(w.marks))], target, fmt.Sprintf("%s%d_", n[:1], j))
		}
	}
	before := f.list()

	// One source stops: the others go on capturing within their flush
	// interval, and an alert names the broken one.
	srvs[1].Stop()
	for _, i := range []int{0, 2} {
		w := write(t, srvs[i], uint64(10+i), "x", nil)
		last := w.marks[len(w.marks)-1]
		written := time.Now()
		waitFor(t, 10*time.Second, names[i]+" captures while beta's source is down", func() bool { return f.durable(names[i], last.TS) })
		if rpo := time.Since(written); rpo > 5*time.Second {
			t.Errorf("%s took %s to make its newest write durable while beta's source was down: its RPO suffered", names[i], rpo)
		}
	}
	waitFor(t, 60*time.Second, "source_unreachable fires for beta", func() bool {
		return slices.Contains(f.list()["beta"].AlertsFiring, alert.SourceUnreachable)
	})
	l := f.list()
	for _, n := range []string{"alpha", "gamma"} {
		if v := l[n]; v.State != server.StateCapturing || len(v.AlertsFiring) > 0 || v.Trouble {
			t.Errorf("%s is troubled by beta's outage: %+v", n, v)
		}
	}
	if !l["beta"].Trouble {
		t.Errorf("beta, whose source is down, is not marked trouble: %+v", l["beta"])
	}

	// A fourth deployment over the API: checked, saved, captured; the
	// others run on untouched.
	srv4 := testserver.Start(t)
	body := fmt.Sprintf(`{"name": "delta", "source": %q, "repo": "file://%s", "capture": {"spool_dir": %q}}`,
		srv4.URI(), filepath.Join(dir, "delta"), filepath.Join(dir, "spool-delta"))
	if a := f.do("POST", "/api/v1/deployments", body); a.Status != http.StatusCreated {
		t.Fatalf("POST /api/v1/deployments: %d %s", a.Status, a.raw)
	}
	f.waitCapturing(60*time.Second, "delta")
	l = f.list()
	for _, n := range []string{"alpha", "gamma"} {
		if l[n].Holder == nil || before[n].Holder == nil || !l[n].Holder.Since.Equal(before[n].Holder.Since) {
			t.Errorf("adding delta restarted %s: holder %+v, before %+v", n, l[n].Holder, before[n].Holder)
		}
	}
	if l["delta"].Origin != server.OriginAPI || l["alpha"].Origin != server.OriginFile {
		t.Errorf("origins: delta %q, alpha %q", l["delta"].Origin, l["alpha"].Origin)
	}
	badRequests(t, f, dir, srvs[0], srv4)

	// A restart keeps delta: it is read back from the state directory.
	f.stop()
	if data, err := os.ReadFile(filepath.Join(stateDir, "deployments.json")); err != nil || !strings.Contains(string(data), `"delta"`) {
		t.Fatalf("state file: %v\n%s", err, data)
	}
	if st, err := os.Stat(filepath.Join(stateDir, "deployments.json")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("the state file holds credentials and must be 0600: %v %v", st.Mode(), err)
	}
	f2 := startFleet(t, file)
	f2.waitCapturing(90*time.Second, "alpha", "gamma", "delta")
}

// badRequests: a duplicate name, a source that does not answer, a
// repository of another source and a change to a file deployment are
// refused with a message, and nothing is saved.
func badRequests(t *testing.T, f *fleet, dir string, src, other *testserver.Server) {
	t.Helper()
	cases := []struct {
		what, method, path, body string
		status                   int
		says                     string
	}{
		{"a duplicate name", "POST", "/api/v1/deployments",
			fmt.Sprintf(`{"name": "alpha", "source": %q, "repo": "file://%s/other"}`, src.URI(), dir), http.StatusConflict, "exists already"},
		{"an unreachable source", "POST", "/api/v1/deployments",
			fmt.Sprintf(`{"name": "ghost", "source": "mongodb://backup:pw-secret@127.0.0.1:1/?serverSelectionTimeoutMS=1500", "repo": "file://%s/ghost"}`, dir),
			http.StatusBadRequest, "nothing was saved"},
		{"a repository of another source", "POST", "/api/v1/deployments",
			fmt.Sprintf(`{"name": "thief", "source": %q, "repo": "file://%s/delta"}`, src.URI(), dir), http.StatusConflict, "delta"},
		{"an unknown key", "POST", "/api/v1/deployments",
			fmt.Sprintf(`{"name": "typo", "source": %q, "repo": "file://%s/typo", "snapshots": {}}`, src.URI(), dir), http.StatusBadRequest, "snapshots"},
		{"a change to a file deployment", "PATCH", "/api/v1/deployments/alpha", `{"snapshot": {"every": "1h"}}`, http.StatusConflict, "declared in"},
		{"a removal of a file deployment", "DELETE", "/api/v1/deployments/alpha", ``, http.StatusConflict, "declared in"},
	}
	for _, c := range cases {
		a := f.do(c.method, c.path, c.body)
		if a.Status != c.status || a.OK || !strings.Contains(a.Error.Message, c.says) {
			t.Errorf("%s: %d %s; want %d saying %q", c.what, a.Status, a.raw, c.status, c.says)
		}
		if strings.Contains(a.raw, "pw-secret") {
			t.Errorf("%s: the answer shows a password: %s", c.what, a.raw)
		}
	}
	l := f.list()
	for _, n := range []string{"ghost", "thief", "typo"} {
		if _, ok := l[n]; ok {
			t.Errorf("refused deployment %s was added", n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "ghost")); err == nil {
		t.Error("a refused POST created a repository")
	}

	// Something to keep: delta's oplog in its repository.
	w := write(t, other, 5, "d", nil)
	last := w.marks[len(w.marks)-1]
	waitFor(t, 60*time.Second, "delta captures its workload", func() bool { return f.durable("delta", last.TS) })

	// DELETE stops delta and keeps its repository; that repository is
	// then refused to another source (its oplog does not continue the
	// history stored), and taken back by delta's own.
	if a := f.do("DELETE", "/api/v1/deployments/delta", ""); a.Status != http.StatusOK {
		t.Fatalf("DELETE delta: %d %s", a.Status, a.raw)
	}
	if _, ok := f.list()["delta"]; ok {
		t.Fatal("delta is still listed after DELETE")
	}
	if _, err := os.Stat(filepath.Join(dir, "delta", "config")); err != nil {
		t.Fatalf("DELETE removed the repository: %v", err)
	}
	a := f.do("POST", "/api/v1/deployments", fmt.Sprintf(`{"name": "thief", "source": %q, "repo": "file://%s/delta"}`, src.URI(), dir))
	if a.Status != http.StatusBadRequest || !strings.Contains(a.Error.Message, "not the one this repository holds") {
		t.Errorf("a repository of another source: %d %s", a.Status, a.raw)
	}
	a = f.do("POST", "/api/v1/deployments", fmt.Sprintf(`{"name": "delta", "source": %q, "repo": "file://%s/delta", "capture": {"spool_dir": %q}}`,
		other.URI(), dir, filepath.Join(dir, "spool-delta")))
	if a.Status != http.StatusCreated {
		t.Fatalf("POST delta again: %d %s", a.Status, a.raw)
	}
	f.waitCapturing(60*time.Second, "delta")
}
