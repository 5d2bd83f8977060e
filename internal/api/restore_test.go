package api_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A restore started over the API, to a mark recorded after the snapshot,
// into a second server under new names, completes and matches the oracle;
// its dry run answers the plan and changes nothing.
func TestRestoreOverAPI(t *testing.T) {
	srv := testserver.Start(t)
	c := startAgent(t, agentConfig(t, srv))
	runWorkload(t, srv, 3, 150, "rs", nil)
	a := c.do("POST", "/api/v1/snapshots", token, "")
	if a.Status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/snapshots: %d %s", a.Status, a.raw)
	}
	waitJob(t, c, "/api/v1/jobs/", a)

	rec := &oracle.Recorder{Client: srv.Client(), Every: 2}
	wcfg := runWorkload(t, srv, 3, 150, "rs", rec) // same databases, after the snapshot
	if len(rec.Marks) == 0 {
		t.Fatal("the workload recorded no mark")
	}
	mark := rec.Marks[len(rec.Marks)-1]
	waitFor(t, 60*time.Second, "capture reaches the mark", func() bool {
		return !c.a.Stats().LastDurable().Before(mark.TS)
	})

	srv2 := testserver.Start(t)
	dbs := workload.Databases(wcfg)
	rename := map[string]string{}
	for i, db := range dbs {
		rename[db] = srv2.DB(fmt.Sprintf("r%d", i))
	}
	body := func(dry bool) string {
		b, err := json.Marshal(api.RestoreRequest{Target: srv2.URI(), To: mark.TS.String(), NS: dbs,
			Rename: rename, Parallel: 2, DryRun: dry})
		must(t, err)
		return string(b)
	}

	dry := c.do("POST", "/api/v1/restores", token, body(true))
	if dry.Status != http.StatusOK {
		t.Fatalf("dry run: %d %s", dry.Status, dry.raw)
	}
	var plan api.PlanView
	must(t, json.Unmarshal(dry.Data, &plan))
	if plan.Entries == nil || *plan.Entries == 0 || plan.Target == nil || plan.Target.T != mark.TS.T ||
		plan.Target.I != mark.TS.I || len(plan.Namespaces) != 4 || plan.Snapshot == "" {
		t.Fatalf("dry-run plan = %s", dry.raw)
	}
	if e := plan.Estimate; e == nil || e.Seconds <= 0 || e.InsertRate <= 0 || e.ReplayRate <= 0 || e.NotEstimated != "" ||
		!strings.HasPrefix(e.Summary, "about ") {
		t.Fatalf("dry run with a target: no estimate from a probe of the target: %s", dry.raw)
	}
	if names, err := srv2.Client().ListDatabaseNames(t.Context(), map[string]any{}); err != nil {
		t.Fatal(err)
	} else {
		for _, n := range names {
			if strings.HasPrefix(n, restore.StagingPrefix) {
				t.Fatalf("the dry run's write probe left database %s on the target", n)
			}
			for _, want := range rename {
				if n == want {
					t.Fatalf("the dry run created database %s on the target", n)
				}
			}
		}
	}

	started := c.do("POST", "/api/v1/restores", token, body(false))
	if started.Status != http.StatusAccepted {
		t.Fatalf("POST /api/v1/restores: %d %s", started.Status, started.raw)
	}
	job := waitJob(t, c, "/api/v1/restores/", started)
	if job.Kind != "restore" || job.Progress == nil {
		t.Fatalf("restore job = %+v", job)
	}
	var res struct {
		Result api.RestoreResult `json:"result"`
	}
	a = c.do("GET", "/api/v1/restores/"+job.ID, token, "")
	must(t, json.Unmarshal(a.Data, &res))
	if res.Result.LastApplied == nil || res.Result.Entries == 0 || res.Result.Documents == 0 ||
		len(res.Result.Phases) < 5 || res.Result.Phases[2].Name != "load" {
		t.Fatalf("restore result = %s", a.raw)
	}
	if err := oracle.Compare(t.Context(), srv2.Client(), mark, oracle.Filter{Include: dbs, Rename: rename}); err != nil {
		t.Fatalf("the restore over the API differs from mark %d (%s): %v", mark.N, mark.TS, err)
	}

	// The same restore again: its dry run with the target says what is in
	// the way, and the restore refuses with the same words.
	dry = c.do("POST", "/api/v1/restores", token, body(true))
	must(t, json.Unmarshal(dry.Data, &plan))
	tc := plan.TargetCheck
	if dry.Status != http.StatusOK || tc == nil || !tc.Refused || len(tc.InTheWay) != 4 ||
		tc.InTheWay[0].Reasons[0] != "holds documents" || !strings.Contains(tc.Verdict, "would refuse before writing anything") {
		t.Fatalf("dry run onto the restored data: %d %s", dry.Status, dry.raw)
	}
	again := c.do("POST", "/api/v1/restores", token, body(false))
	var failed api.Job
	must(t, json.Unmarshal(again.Data, &failed))
	waitFor(t, 60*time.Second, "the second restore ends", func() bool {
		c.get("/api/v1/restores/"+failed.ID, &failed)
		return failed.State != api.StateRunning
	})
	first := tc.InTheWay[0].Namespace + ": holds documents"
	if failed.State != api.StateFailed || !strings.Contains(failed.Error, first) || strings.Contains(failed.Error, "\n") || failed.Ended == nil {
		t.Fatalf("a restore onto data without drop: %+v, want failed with the reason %q on one line", failed, first)
	}
	t.Logf("second restore failed as it should: %s", failed.Error)

	// Mistakes are named with the API's field names.
	for body, words := range map[string]string{
		`{"to": "2026-11-25t09:30:00", "dry_run": true}`:                            `to "2026-11-25t09:30:00" has no time zone: add Z or an offset`,
		`{"to": "09:30", "dry_run": true}`:                                          `to "09:30" looks like a clock time: give a full RFC 3339 time`,
		`{"to": "latest", "dry_run": true, "connect_timeout": "0s"}`:                `connect_timeout "0s": want a positive duration`,
		`{"to": "latest", "dry_run": true, "rename": {"a.u": "a.system.x"}}`:        `rename a.u=a.system.x: collection name "system.x" starts with system.`,
		`{"to": "latest", "dry_run": true, "rename": {"a.u": "x.y", "a.u": "x.z"}}`: "read request body: rename a.u=x.y and rename a.u=x.z: a.u is renamed twice",
		`{"to": "latest", "dry_run": true, "ns": ["admin"]}`:                        "ns \"admin\": admin is a system database, never restored; use with_users_and_roles",
		`{"to": "latest", "dry_run": true, "connect_timeout": "-5s"}`:               `connect_timeout "-5s"`,
		`{"to": "latest", "dry_run": true, "ns": ["shop.ord*"]}`:                    `ns "shop.ord*": wildcards`,
		`{"to": "latest", "target": "mongodb://x", "parallel": -2}`:                 "parallel -2: want at least 1",
		`{"to": "latest", "dry_run": true, "rename": {"shop": "a.b"}}`:              "rename shop=a.b: rename a database to a database (shop=shop_0930)",
	} {
		a := c.do("POST", "/api/v1/restores", token, body)
		if a.Status != http.StatusBadRequest || a.Error == nil || !strings.HasPrefix(a.Error.Message, words) || strings.Contains(a.Error.Message, "--") {
			t.Errorf("POST %s: %d %s, want 400 starting %q, in the API's words (no --flag)", body, a.Status, a.raw, words)
		}
	}
}

// A brand-new deployment (empty oplog): the agent's base snapshot holds
// no collection. A dry run of that point answers an empty plan with a
// note; after one insert, the whole deployment's dry run lists the
// collection the oplog creates and the restore job restores it.
func TestRestoreNewDeploymentOverAPI(t *testing.T) {
	srv := testserver.Start(t)
	if srv.External() {
		t.Skip("needs an empty oplog: a real replica set's oplog is never empty (replSetInitiate logs an entry)")
	}
	cfg := agentConfig(t, srv)
	cfg.Snapshot.Every = config.Default().Snapshot.Every // the base snapshot at start
	c := startAgent(t, cfg)
	var snaps []api.Snapshot
	waitFor(t, 2*time.Minute, "the agent's base snapshot", func() bool {
		c.get("/api/v1/snapshots", &snaps)
		return len(snaps) == 1
	})
	var plan api.PlanView
	dryRun := func() answer {
		a := c.do("POST", "/api/v1/restores", token, `{"to": "latest", "dry_run": true}`)
		if a.Status != http.StatusOK {
			t.Fatalf("dry run of the whole deployment: %d %s", a.Status, a.raw)
		}
		plan = api.PlanView{}
		must(t, json.Unmarshal(a.Data, &plan))
		return a
	}
	if dry := dryRun(); len(plan.Namespaces) != 0 || plan.Note != restore.EmptyNote {
		t.Fatalf("dry run of the empty base snapshot: %s", dry.raw)
	}

	shop := srv.DB("shop")
	_, err := srv.Client().Database(shop).Collection("orders").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "a-1"}})
	must(t, err)
	_, err = srv.Client().Database(shop).Collection("later").InsertOne(t.Context(), bson.D{{Key: "_id", Value: 1}, {Key: "note", Value: "b"}})
	must(t, err)
	newest, err := oracle.LastOplogTS(t.Context(), srv.Client())
	must(t, err)
	waitFor(t, time.Minute, "capture reaches the insert", func() bool { return !c.a.Stats().LastDurable().Before(newest) })
	if dry := dryRun(); len(plan.Namespaces) != 2 || plan.Namespaces[0].Source != shop+".orders" || !plan.Namespaces[0].Late || plan.Note != "" {
		t.Fatalf("dry run after the inserts: %s", dry.raw)
	}
	// Two collections that exist only in the oplog, renamed onto one: refused
	// while planning, in the API's words.
	merge := fmt.Sprintf(`{"to": "latest", "dry_run": true, "rename": {%q: %q}}`, shop+".orders", shop+".later")
	wantError(t, c.do("POST", "/api/v1/restores", token, merge), http.StatusUnprocessableEntity, "not_restorable",
		"plan restore: rename "+shop+".orders="+shop+".later: ", "would both be restored as "+shop+".later")
	srv2 := testserver.Start(t)
	body, err := json.Marshal(api.RestoreRequest{Target: srv2.URI(), To: "latest"})
	must(t, err)
	waitJob(t, c, "/api/v1/restores/", c.do("POST", "/api/v1/restores", token, string(body)))
	var doc bson.M
	if err := srv2.Client().Database(shop).Collection("orders").FindOne(t.Context(), bson.D{}).Decode(&doc); err != nil || doc["sku"] != "a-1" {
		t.Fatalf("the restore job left %v (%v) in the target, want the inserted order", doc, err)
	}
}
