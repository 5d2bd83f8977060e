package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/alert"
	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Scheduled drills: the agent drills its base snapshot's point right after
// taking it (recording the reference), then rounds of latest and random;
// the status and the metrics show the last drill. A chunk corrupted
// afterwards makes the next drills fail: drill_failed fires, naming the
// object, and rewind_drill_failures_total counts them.
func TestScheduledDrills(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	ctx := context.Background()
	for i := range 50 {
		_, err := srv.Client().Database(srv.DB("shop")).Collection("orders").InsertOne(ctx, bson.D{{Key: "_id", Value: i}, {Key: "v", Value: i}})
		must(t, err)
	}
	url := newRepo(t)
	hook := newAlertReceiver(t)
	cfg := alertConfig(t, srv, url, hook)
	cfg.Drills = config.Drills{Every: config.Duration(2 * time.Second), Scratch: config.Secret(testserver.Start(t).URI()),
		Points: []string{"latest", "random"}}
	a := startAgent(t, cfg)

	var st api.Status
	waitFor(t, 2*time.Minute, "an exact random drill in GET /api/v1/status", func() bool {
		st = getStatus(t, a)
		d := st.LastDrill
		return d != nil && d.Verdict == "exact" && d.Chosen == "random" // a point with a reference; the quiet source is read too
	})
	fams := scrapeAgent(t, a)
	if last := fams["rewind_drill_last_success_timestamp_seconds"].GetMetric()[0].GetGauge().GetValue(); last < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Fatalf("rewind_drill_last_success_timestamp_seconds = %v after an exact drill", last)
	}

	var chunk string
	root := strings.TrimPrefix(url, "file://")
	must(t, filepath.Walk(filepath.Join(root, "data"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && chunk == "" {
			chunk = p
		}
		return err
	}))
	b, err := os.ReadFile(chunk)
	must(t, err)
	b[len(b)/2] ^= 0x10
	must(t, os.WriteFile(chunk, b, 0o600))
	key, _ := filepath.Rel(root, chunk)

	ev := hook.wait(t, alert.DrillFailed, alert.Firing)
	if !strings.Contains(ev.Summary, filepath.ToSlash(key)) || ev.Severity != alert.Critical {
		t.Fatalf("drill_failed = %+v; want the corrupt object %s named", ev, key)
	}
	waitFor(t, 30*time.Second, "the failed drill in the metrics", func() bool {
		fams = scrapeAgent(t, a)
		return fams["rewind_drill_failures_total"].GetMetric()[0].GetCounter().GetValue() >= 1 &&
			fams["rewind_drill_duration_seconds"].GetMetric()[0].GetHistogram().GetSampleCount() >= 3
	})
	if st = getStatus(t, a); st.LastDrill == nil || st.LastDrill.Verdict != "failed" {
		t.Fatalf("last drill after the corruption: %+v", st.LastDrill)
	}
	// The history over the API, the auditors' report: the failed drill
	// first, the exact ones after it.
	resp, err := http.Get("http://" + apiAddr(t, a) + "/api/v1/drills")
	must(t, err)
	defer resp.Body.Close()
	var env struct {
		Data status.DrillReport `json:"data"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&env))
	rep := env.Data
	if resp.StatusCode != http.StatusOK || len(rep.Drills) < 3 || rep.Drills[0].Verdict != "failed" || rep.Summary.Exact < 2 ||
		rep.Summary.Failed < 1 || rep.Summary.LastExact == nil || rep.Shard == "" {
		t.Fatalf("GET /api/v1/drills: %d %+v", resp.StatusCode, rep)
	}
}

func getStatus(t *testing.T, a *runningAgent) api.Status {
	t.Helper()
	resp, err := http.Get("http://" + apiAddr(t, a) + "/api/v1/status")
	must(t, err)
	defer resp.Body.Close()
	var env struct {
		OK   bool       `json:"ok"`
		Data api.Status `json:"data"`
	}
	must(t, json.NewDecoder(resp.Body).Decode(&env))
	if !env.OK {
		t.Fatalf("GET /api/v1/status: %d", resp.StatusCode)
	}
	return env.Data
}
