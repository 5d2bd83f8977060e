package api_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/api"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// liveOrders is a test server holding opsRepo's latest state, restored
// over the API: the live deployment the bad delete happened in.
func liveOrders(t *testing.T) (*testserver.Server, string, *rt.Repo, *client) {
	t.Helper()
	srv := testserver.Start(t)
	db := srv.DB("ops")
	r := opsRepo(t, db)
	c := repoAPI(t, r, false)
	body, err := json.Marshal(api.RestoreRequest{Target: srv.URI(), To: "latest", NS: []string{db}})
	must(t, err)
	waitJob(t, c, "/api/v1/restores/", c.do("POST", "/api/v1/restores", token, string(body)))
	if got := ordersIn(t, srv, db); !maps.Equal(got, latestOrders()) {
		t.Fatalf("the live orders: %v, want %v", got, latestOrders())
	}
	return srv, db, r, c
}

// ordersIn reads db.orders as _id -> note.
func ordersIn(t *testing.T, srv *testserver.Server, db string) map[int32]string {
	t.Helper()
	cur, err := srv.Client().Database(db).Collection("orders").Find(t.Context(), bson.D{})
	must(t, err)
	out := map[int32]string{}
	for cur.Next(t.Context()) {
		out[cur.Current.Lookup("_id").Int32()] = cur.Current.Lookup("note").StringValue()
	}
	must(t, cur.Err())
	return out
}

// result reads a finished job's result into v.
func result(t *testing.T, c *client, path string, job api.Job, v any) {
	t.Helper()
	var out struct {
		Result json.RawMessage `json:"result"`
	}
	c.get(path+job.ID, &out)
	must(t, json.Unmarshal(out.Result, v))
}

// The filtered, merging restore over the API: the orders of grp
// 3 as of just before the bad delete, merged into the live collection
// with "missing", come back; order 7, written again since, is left alone,
// and the result counts inserted, replaced and left alone as the CLI does.
func TestRestoreFilterMergeOverAPI(t *testing.T) {
	srv, db, _, c := liveOrders(t)
	before := rt.EntryTS(0).String() // entry 0 applied, the bad delete (entry 1) not
	req := fmt.Sprintf(`{"target": %q, "to": %q, "ns": [%q], "filter": {"grp": 3}, "merge": "missing"`, srv.URI(), before, db+".orders")

	dry := c.do("POST", "/api/v1/restores", token, req+`, "dry_run": true}`)
	var plan api.PlanView
	must(t, json.Unmarshal(dry.Data, &plan))
	if dry.Status != 200 || compact(t, plan.Filter) != `{"grp":{"$numberInt":"3"}}` || plan.Merge != "missing" ||
		plan.TargetCheck == nil || plan.TargetCheck.Refused || !strings.Contains(plan.TargetCheck.Verdict, "a merge can write into") {
		t.Fatalf("dry run of the filtered merge: %d %s", dry.Status, dry.raw)
	}
	// The filter may be given as a string too, as --filter takes it.
	str := c.do("POST", "/api/v1/restores", token, strings.Replace(req, `{"grp": 3}`, `"{\"grp\": {\"$gte\": 3}}"`, 1)+`, "dry_run": true}`)
	must(t, json.Unmarshal(str.Data, &plan))
	if str.Status != 200 || compact(t, plan.Filter) != `{"grp":{"$gte":{"$numberInt":"3"}}}` {
		t.Fatalf("dry run with the filter as a string: %d %s", str.Status, str.raw)
	}

	job := waitJob(t, c, "/api/v1/restores/", c.do("POST", "/api/v1/restores", token, req+"}"))
	var res api.RestoreResult
	result(t, c, "/api/v1/restores/", job, &res)
	wantMerged := api.MergedCounts{Inserted: 4, LeftAlone: 1}
	if res.Merged == nil || *res.Merged != wantMerged || len(res.Namespaces) != 1 || res.Namespaces[0].Merged == nil ||
		*res.Namespaces[0].Merged != wantMerged || res.Namespaces[0].Target != db+".orders" {
		t.Fatalf("the filtered merge's result: %+v, want merged %+v overall and in %s.orders", res, wantMerged, db)
	}
	want := latestOrders()
	for _, id := range []int32{3, 11, 15, 19} {
		want[id] = fmt.Sprintf("o%d", id)
	}
	if got := ordersIn(t, srv, db); !maps.Equal(got, want) {
		t.Fatalf("the live orders after the filtered merge: %v, want %v", got, want)
	}

	for body, words := range map[string]string{
		`{"to": "latest", "dry_run": true, "filter": "not json"}`:                             `filter "not json" is not JSON`,
		`{"to": "latest", "dry_run": true, "filter": 3}`:                                      `filter: want a query as a JSON object`,
		`{"to": "latest", "dry_run": true, "filter": "[1]"}`:                                  `filter "[1]" is not a document`,
		`{"to": "latest", "dry_run": true, "merge": "sideways"}`:                              `merge "sideways": want missing`,
		`{"to": "latest", "dry_run": true, "merge": "missing", "drop": true}`:                 "merge missing with drop",
		`{"to": "latest", "dry_run": true, "filter": {"a": 1}, "with_users_and_roles": true}`: "with_users_and_roles with filter or merge",
	} {
		a := c.do("POST", "/api/v1/restores", token, body)
		wantError(t, a, 400, "bad_request", words)
		if strings.Contains(a.Error.Message, "--") {
			t.Errorf("POST %s: %q is in the CLI's words, want the API's", body, a.Error.Message)
		}
	}
}

// Undo over the API, as the dashboard runs it: a dry run (a job) says
// what would change (counts, the _ids as canonical Extended JSON, the
// conflict) and changes nothing; the undo puts back the orders the bad
// delete removed and leaves order 7, written again since, alone; force
// puts it back too.
func TestUndoOverAPI(t *testing.T) {
	srv, db, _, c := liveOrders(t)
	undo := func(dry, force bool) api.UndoResult {
		t.Helper()
		body, err := json.Marshal(api.UndoRequest{Target: srv.URI(), From: rt.EntryTS(0).String(), To: rt.EntryTS(1).String(),
			NS: []string{db + ".orders"}, DryRun: dry, Force: force})
		must(t, err)
		a := c.do("POST", "/api/v1/undos", token, string(body))
		if a.Status != 202 {
			t.Fatalf("POST /api/v1/undos: %d %s", a.Status, a.raw)
		}
		job := waitJob(t, c, "/api/v1/undos/", a)
		if job.Kind != "undo" || job.Progress == nil {
			t.Fatalf("undo job: %+v", job)
		}
		var res api.UndoResult
		result(t, c, "/api/v1/undos/", job, &res)
		return res
	}
	sample := func(n api.UndoNamespace) (ids, conflicts []string) {
		for _, id := range n.Sample {
			ids = append(ids, compact(t, id))
		}
		for _, id := range n.Conflicts {
			conflicts = append(conflicts, compact(t, id))
		}
		slices.Sort(ids)
		return ids, conflicts
	}
	wantIDs := []string{`{"$numberInt":"11"}`, `{"$numberInt":"15"}`, `{"$numberInt":"19"}`, `{"$numberInt":"3"}`}

	res := undo(true, false)
	wantCounts := api.UndoCounts{Changed: 5, Reinserted: 4, ConflictsLeft: 1, Written: 4}
	if res.UndoCounts != wantCounts || !res.DryRun || len(res.Namespaces) != 1 || res.Namespaces[0].Namespace != db+".orders" ||
		res.From.T != rt.EntryTS(0).T || res.To.T != rt.EntryTS(1).T || res.Entries != 1 {
		t.Fatalf("dry run: %+v, want counts %+v in %s.orders over (entry 0, entry 1]", res, wantCounts, db)
	}
	if ids, conflicts := sample(res.Namespaces[0]); !slices.Equal(ids, wantIDs) || !slices.Equal(conflicts, []string{`{"$numberInt":"7"}`}) {
		t.Fatalf("dry run lists _ids %v and conflicts %v, want %v and order 7", ids, conflicts, wantIDs)
	}
	if got := ordersIn(t, srv, db); !maps.Equal(got, latestOrders()) {
		t.Fatalf("the dry run changed the orders: %v", got)
	}

	res = undo(false, false)
	want := latestOrders()
	for _, id := range []int32{3, 11, 15, 19} {
		want[id] = fmt.Sprintf("o%d", id)
	}
	if got := ordersIn(t, srv, db); !maps.Equal(got, want) || res.UndoCounts != wantCounts || res.DryRun || len(res.Phases) == 0 {
		t.Fatalf("after the undo: %v (counts %+v), want %v", got, res.UndoCounts, want)
	}
	res = undo(false, true)
	want[7] = "o7"
	if got := ordersIn(t, srv, db); !maps.Equal(got, want) || res.ConflictsForced != 1 || res.Written != 1 {
		t.Fatalf("after the undo with force: %v (counts %+v), want %v", got, res.UndoCounts, want)
	}

	from, to := rt.EntryTS(0).String(), rt.EntryTS(1).String()
	for body, words := range map[string]string{
		fmt.Sprintf(`{"target": %q, "from": %q, "to": %q}`, srv.URI(), from, to):                                      "ns is required",
		fmt.Sprintf(`{"from": %q, "to": %q, "ns": ["a.b"], "dry_run": true}`, from, to):                               "target is required",
		fmt.Sprintf(`{"target": %q, "from": "latest", "to": %q, "ns": ["a.b"]}`, srv.URI(), to):                       "from latest: nothing comes after it",
		fmt.Sprintf(`{"target": %q, "from": %q, "to": %q, "ns": ["a.b"]}`, srv.URI(), to, from):                       "is not before to",
		fmt.Sprintf(`{"target": %q, "from": %q, "to": %q, "ns": ["a.b"], "filter": "{grp: 3}"}`, srv.URI(), from, to): `filter "{grp: 3}" is not JSON`,
		fmt.Sprintf(`{"target": %q, "from": %q, "to": %q, "ns": ["a.b"], "force": "yes"}`, srv.URI(), from, to):       "read request body: force: want true or false, not a JSON string",
		fmt.Sprintf(`{"target": %q, "from": %q, "to": %q, "ns": "a.b"}`, srv.URI(), from, to):                         "read request body: ns: want a list, not a JSON string",
		fmt.Sprintf(`{"target": %q, "from": "9:30", "to": %q, "ns": ["a.b"]}`, srv.URI(), to):                         `from "9:30" looks like a clock time`,
	} {
		a := c.do("POST", "/api/v1/undos", token, body)
		wantError(t, a, 400, "bad_request", words)
		if strings.Contains(a.Error.Message, "--") {
			t.Errorf("POST %s: %q is in the CLI's words, want the API's", body, a.Error.Message)
		}
	}
	wantError(t, c.do("POST", "/api/v1/undos", token, fmt.Sprintf(`{"target": %q, "from": "2001-01-01T00:00:00Z", "to": "2001-01-01T00:01:00Z", "ns": [%q]}`, srv.URI(), db)),
		422, "not_restorable", "no restore window holds")
	wantError(t, c.do("POST", "/api/v1/undos", token, fmt.Sprintf(`{"target": %q, "from": %q, "to": %q, "ns": [%q]}`, srv.URI(), from, to, db+".nothing")),
		422, "not_restorable", db+".nothing")
	wantError(t, c.do("GET", "/api/v1/undos/undo-nope", token, ""), 404, "not_found", `no undo "undo-nope"`)
}
