package replay_test

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// ejson reads relaxed Extended JSON (small integers are int32).
func ejson(t *testing.T, s string) bson.Raw {
	t.Helper()
	var r bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(s), false, &r); err != nil {
		t.Fatalf("parse %s: %v", s, err)
	}
	return r
}

// TestInternalOpKindsSkipped: newer servers log op kinds for their own
// storage, with no user document in them (shared/oplog/README.md §1, §11):
// global index keys (xi, xd; 7.x) and container writes (ci, cu, cd, km;
// 8.x+, e.g. index tables of primary-driven index builds). Replay skips them,
// alone or inside applyOps, and applies what surrounds them.
func TestInternalOpKindsSkipped(t *testing.T) {
	m := replay.NewMemory()
	a := &replay.Applier{Memory: m}
	entries := []bson.Raw{
		ejson(t, `{"op":"i","ns":"app.c","o":{"_id":1},"ts":{"$timestamp":{"t":1733200000,"i":1}}}`),
		ejson(t, `{"op":"ci","ns":"app.c","container":"index-7-4823945172390457612","o":{"k":{"$numberLong":"5"},"v":{"$binary":{"base64":"QQ==","subType":"00"}}},"ts":{"$timestamp":{"t":1733200000,"i":2}}}`),
		ejson(t, `{"op":"cu","ns":"app.c","container":"index-7-4823945172390457612","o":{"k":{"$numberLong":"5"},"v":{"$binary":{"base64":"Qg==","subType":"00"}},"$v":{"$numberLong":"1"}},"ts":{"$timestamp":{"t":1733200000,"i":3}}}`),
		ejson(t, `{"op":"cd","ns":"app.c","container":"index-7-4823945172390457612","o":{"k":{"$numberLong":"5"}},"ts":{"$timestamp":{"t":1733200000,"i":4}}}`),
		ejson(t, `{"op":"km","ns":"app.c","ts":{"$timestamp":{"t":1733200000,"i":5}}}`),
		ejson(t, `{"op":"c","ns":"admin.$cmd","o":{"applyOps":[
			{"op":"xi","ns":"app.$globalIndex","o":{"ik":{"x":1},"dk":{"_id":1}}},
			{"op":"i","ns":"app.c","o":{"_id":2}},
			{"op":"xd","ns":"app.$globalIndex","o":{"ik":{"x":1},"dk":{"_id":1}}}]},
			"ts":{"$timestamp":{"t":1733200000,"i":6}}}`),
	}
	st, err := a.Apply(t.Context(), entries)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if st.Skipped != 6 || st.Inserts != 2 {
		t.Errorf("stats %+v, want 6 skipped and 2 inserts", st)
	}
	if got := m.Documents("app.c"); len(got) != 2 {
		t.Errorf("app.c holds %v, want the two inserted documents", got)
	}
}

// TestUnknownEntriesStop: an op kind or a command rewind does not know
// stops the replay with an error naming the entry (ts, ns, op or command)
// and saying what to do, wherever it sits (alone, inside applyOps, in a
// namespace the restore leaves out); nothing after it is applied.
func TestUnknownEntriesStop(t *testing.T) {
	tests := []struct{ name, entry, want string }{
		{"unknown op", `{"op":"zz","ns":"app.c","o":{"_id":1},"ts":{"$timestamp":{"t":1733200000,"i":7}}}`,
			`(ts=1733200000,7 op="zz" ns="app.c"): unknown op "zz"`},
		{"unknown op without o", `{"op":"zz","ns":"app.c","ts":{"$timestamp":{"t":1733200000,"i":7}}}`,
			`(ts=1733200000,7 op="zz" ns="app.c"): unknown op "zz"`},
		{"unknown command", `{"op":"c","ns":"app.$cmd","o":{"cloneCollectionAsCapped":"c","toCollection":"d"},"ts":{"$timestamp":{"t":1733200000,"i":8}}}`,
			`(ts=1733200000,8 op="c" ns="app.$cmd"): unknown command "cloneCollectionAsCapped"`},
		{"unknown command in applyOps", `{"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"c","ns":"app.$cmd","o":{"setIndexCommitQuorum":"c"}}]},"ts":{"$timestamp":{"t":1733200000,"i":9}}}`,
			`(ts=1733200000,9 op="c" ns="admin.$cmd"): applyOps operation 0 (op="c" ns="app.$cmd"): unknown command "setIndexCommitQuorum"`},
		{"unknown command filtered out", `{"op":"c","ns":"other.$cmd","o":{"cloneCollectionAsCapped":"c","toCollection":"d"},"ts":{"$timestamp":{"t":1733200000,"i":10}}}`,
			`(ts=1733200000,10 op="c" ns="other.$cmd"): unknown command "cloneCollectionAsCapped"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := replay.NewMemory()
			a := &replay.Applier{Memory: m, Map: func(db, coll string) (string, string, bool) { return db, coll, db == "app" }}
			after := ejson(t, `{"op":"i","ns":"app.c","o":{"_id":2},"ts":{"$timestamp":{"t":1733200001,"i":1}}}`)
			_, err := a.Apply(t.Context(), []bson.Raw{ejson(t, tc.entry), after})
			if err == nil {
				t.Fatal("applied without an error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tc.want) {
				t.Errorf("error %q does not name the entry: want %q", msg, tc.want)
			}
			if !strings.Contains(msg, "upgrade rewind") || !strings.Contains(msg, "report it") {
				t.Errorf("error %q does not say what to do (upgrade rewind, report it)", msg)
			}
			if docs := m.Documents("app.c"); len(docs) != 0 {
				t.Errorf("entries after the unknown one were applied: %v", docs)
			}
		})
	}
}

// TestCreateWithIdents: MongoDB 8.3 logs the storage idents of a new
// collection in o2 of its create entry ({catalogId, ident, idIndexIdent,
// directoryPerDB, directoryForIndexes}) and replicated record ids as a
// create option (recordIdsReplicated, which change streams hide too): both
// are the source's storage, never passed to the target. The Memory's create
// refuses fields MongoDB's create does not take, as MongoDB does.
func TestCreateWithIdents(t *testing.T) {
	m := replay.NewMemory()
	a := &replay.Applier{Memory: m}
	entry := ejson(t, `{"op":"c","ns":"logs.$cmd","o":{"create":"events","capped":true,"size":{"$numberLong":"65536"},"recordIdsReplicated":true,
		"idIndex":{"v":2,"key":{"_id":1},"name":"_id_"}},
		"o2":{"catalogId":{"$numberLong":"12"},"ident":"collection-12-4823945172390457612","idIndexIdent":"index-13-4823945172390457612","directoryPerDB":false,"directoryForIndexes":false},
		"ts":{"$timestamp":{"t":1733200000,"i":1}}}`)
	if _, err := a.Apply(t.Context(), []bson.Raw{entry}); err != nil {
		t.Fatalf("apply: %v", err)
	}
	opts, ok := m.Options("logs.events")
	if !ok {
		t.Fatal("logs.events not created")
	}
	if want := ejson(t, `{"capped":true,"size":{"$numberLong":"65536"}}`); string(opts) != string(want) {
		t.Errorf("options %s, want %s: storage fields reached the target", opts, want)
	}
}
