package server_test

import (
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/server"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A deployment that cannot start (its source does not answer) is failed,
// alerted with deployment_failed and retried, next to one that captures;
// a reload adds, changes and removes file deployments without restarting
// the others; max_deployments leaves the rest waiting.
func TestFleetIsolationReloadAndSlots(t *testing.T) {
	src := testserver.Start(t)
	dir := t.TempDir()
	dead := "  - {name: dead, source: 'mongodb://u:pw-secret@127.0.0.1:1/?serverSelectionTimeoutMS=300', repo: 'file://" + filepath.Join(dir, "dead") + "'}\n"
	file := header(filepath.Join(dir, "state")) + entry("live", src, dir) + dead
	f := startFleet(t, file)
	f.waitCapturing(60*time.Second, "live")
	waitFor(t, 30*time.Second, "dead fails and is alerted", func() bool {
		v := f.list()["dead"]
		return v.State == server.StateFailed && v.RetryAt != nil && slices.Contains(v.AlertsFiring, alert.DeploymentFailed)
	})
	v := f.list()["dead"]
	if !v.Trouble || !strings.Contains(v.Error, "127.0.0.1:1") || strings.Contains(v.Error, "pw-secret") {
		t.Errorf("the failed deployment's line: %+v", v)
	}
	if a := f.do("GET", "/api/v1/deployments/dead/status", ""); a.Status != http.StatusServiceUnavailable || !strings.Contains(a.Error.Message, "failed") {
		t.Errorf("a failed deployment's own API: %d %s", a.Status, a.raw)
	}
	live := f.list()["live"].Holder

	// Reload: dead goes, second comes; live runs on untouched.
	src2 := testserver.Start(t)
	must(t, os.WriteFile(f.path, []byte(header(filepath.Join(dir, "state"))+entry("live", src, dir)+entry("second", src2, dir)), 0o600))
	if a := f.do("POST", "/-/reload", ""); a.Status != http.StatusOK {
		t.Fatalf("POST /-/reload: %d %s", a.Status, a.raw)
	}
	f.waitCapturing(60*time.Second, "second")
	l := f.list()
	if _, ok := l["dead"]; ok {
		t.Error("dead is still listed after the reload removed it")
	}
	if h := l["live"].Holder; h == nil || live == nil || !h.Since.Equal(live.Since) {
		t.Errorf("the reload restarted live: holder %+v, before %+v", h, live)
	}
	// A file with a mistake changes nothing.
	must(t, os.WriteFile(f.path, []byte(header(filepath.Join(dir, "state"))+"  - {name: x}\n"), 0o600))
	if a := f.do("POST", "/-/reload", ""); a.Status != http.StatusBadRequest || !strings.Contains(a.Error.Message, "nothing changed") {
		t.Errorf("a reload of a wrong file: %d %s", a.Status, a.raw)
	}
	if l := f.list(); len(l) != 2 {
		t.Errorf("a refused reload changed the deployments: %v", l)
	}
	f.stop()

	// max_deployments: 1 captures one of the two, the other waits.
	capped := strings.Replace(header(filepath.Join(dir, "state")), "deployments:\n", "max_deployments: 1\ndeployments:\n", 1) +
		entry("live", src, dir) + entry("second", src2, dir)
	g := startFleet(t, capped)
	waitFor(t, 60*time.Second, "one captures, one waits", func() bool {
		l := g.list()
		states := []string{l["live"].State, l["second"].State}
		slices.Sort(states)
		return slices.Equal(states, []string{server.StateCapturing, server.StateWaiting})
	})
}

// Two servers sharing one state_dir see each other's API deployments: one
// added on the first starts (standing by) on the second, one removed on
// the second stops on the first; a POST on each keeps both in the file.
func TestSharedStateDir(t *testing.T) {
	src := testserver.Start(t)
	dir := t.TempDir()
	file := header(filepath.Join(dir, "state"))
	a, b := startFleet(t, file), startFleet(t, file)
	post := func(f *fleet, name string) {
		t.Helper()
		body := `{"name": "` + name + `", "source": "` + src.URI() + `", "repo": "file://` + filepath.Join(dir, name) +
			`", "capture": {"spool_dir": "` + filepath.Join(dir, "spool-"+name) + `"}}`
		if r := f.do("POST", "/api/v1/deployments", body); r.Status != http.StatusCreated {
			t.Fatalf("POST %s: %d %s", name, r.Status, r.raw)
		}
	}
	post(a, "one")
	post(b, "two")
	waitFor(t, 60*time.Second, "each server runs both, one capturing and one standing by each", func() bool {
		la, lb := a.list(), b.list()
		for _, n := range []string{"one", "two"} {
			states := []string{la[n].State, lb[n].State}
			slices.Sort(states)
			if !slices.Equal(states, []string{server.StateCapturing, server.StateStandby}) {
				return false
			}
		}
		return true
	})
	if r := b.do("DELETE", "/api/v1/deployments/one", ""); r.Status != http.StatusOK {
		t.Fatalf("DELETE one on the second server: %d %s", r.Status, r.raw)
	}
	waitFor(t, 30*time.Second, "the first server stops one", func() bool {
		_, ok := a.list()["one"]
		return !ok
	})
	data, err := os.ReadFile(filepath.Join(dir, "state", "deployments.json"))
	must(t, err)
	if strings.Contains(string(data), `"one"`) || !strings.Contains(string(data), `"two"`) {
		t.Fatalf("state file after POST on each and DELETE of one:\n%s", data)
	}
}
