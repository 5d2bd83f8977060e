package replay_test

import (
	"bytes"
	"log/slog"
	"strconv"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

const txnSession = `"lsid":{"id":{"$binary":{"base64":"9xNwl0/rRUiTU0oXLuKpQw==","subType":"04"}}},"txnNumber":{"$numberLong":"5"}`

func prepareOn(id string, bal int) string {
	return `{"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"u","ns":"bank.acct","o":{"$v":2,"diff":{"u":{"bal":` +
		strconv.Itoa(bal) + `}}},"o2":{"_id":"` + id + `"}}],"prepare":true},` + txnSession + `}`
}

const commitEntry = `{"op":"c","ns":"admin.$cmd","o":{"commitTransaction":1,"commitTimestamp":{"$timestamp":{"t":100,"i":4}}},` + txnSession + `}`

// A cross-shard transaction replayed from its shards' merged oplogs: each
// participant's prepare is buffered under the one lsid+txnNumber, the
// first commit applies every shard's part, and the other shards' commits
// that follow are known decisions, not commits of a transaction whose
// prepare was missed (no warning, nothing skipped). One more commit than
// there were prepares is that warning again.
func TestCrossShardTxnAppliedWholeAtFirstDecision(t *testing.T) {
	m := replay.NewMemory()
	if err := m.Load("bank.acct", []bson.Raw{ejson(t, `{"_id":"A","bal":1}`), ejson(t, `{"_id":"B","bal":1}`), ejson(t, `{"_id":"C","bal":1}`)}); err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	a := &replay.Applier{Memory: m, SkipFromMigrate: true, Log: slog.New(slog.NewTextHandler(&logged, nil))}
	apply := func(es ...string) replay.Stats {
		t.Helper()
		raws := make([]bson.Raw, len(es))
		for i, e := range es {
			raws[i] = ejson(t, e)
		}
		st, err := a.Apply(t.Context(), raws)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	apply(prepareOn("A", 7), prepareOn("B", 8), prepareOn("C", 9))
	if a.Pending() != 1 {
		t.Fatalf("pending %d after three shards' prepares, want 1 transaction", a.Pending())
	}
	apply(commitEntry)
	for i, want := range []string{`{"_id":"A","bal":7}`, `{"_id":"B","bal":8}`, `{"_id":"C","bal":9}`} {
		if got := m.Documents("bank.acct")[i]; !bytes.Equal(got, ejson(t, want)) {
			t.Errorf("after the first commit: %s, want %s (the whole transaction)", got, want)
		}
	}
	st := apply(commitEntry, commitEntry)
	if st.Skipped != 0 || st.Commands != 2 || a.Pending() != 0 || logged.Len() != 0 {
		t.Fatalf("the other two shards' commits: %+v, pending %d, log %q; want two commands, nothing skipped or logged", st, a.Pending(), logged.String())
	}
	if st := apply(commitEntry); st.Skipped != 1 || !strings.Contains(logged.String(), "prepare was not replayed") {
		t.Fatalf("a fourth commit: %+v, log %q; want it skipped with the warning", st, logged.String())
	}
}

// TxnEventOf tells prepares, commits (with their commitTimestamp) and
// aborts apart from everything else, and keys them as the Applier does.
func TestTxnEventOf(t *testing.T) {
	abort := `{"op":"c","ns":"admin.$cmd","o":{"abortTransaction":1},` + txnSession + `}`
	cases := []struct {
		entry string
		want  replay.TxnEvent
	}{
		{prepareOn("A", 1), replay.TxnPrepare},
		{commitEntry, replay.TxnCommit},
		{abort, replay.TxnAbort},
		{`{"op":"i","ns":"bank.acct","o":{"_id":1}}`, replay.TxnNone},
		{`{"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"i","ns":"a.b","o":{"_id":1}}]}}`, replay.TxnNone},                    // no session
		{`{"op":"c","ns":"admin.$cmd","o":{"applyOps":[{"op":"i","ns":"a.b","o":{"_id":1}}]},` + txnSession + `}`, replay.TxnNone}, // unprepared
		{`{"op":"c","ns":"admin.$cmd","o":{"commitTransaction":1}}`, replay.TxnNone},                                               // no session
	}
	var keys []string
	for _, c := range cases {
		ev, key, cts := replay.TxnEventOf(ejson(t, c.entry))
		if ev != c.want {
			t.Errorf("%s: event %d, want %d", c.entry, ev, c.want)
		}
		if ev != replay.TxnNone {
			keys = append(keys, key)
		}
		if ev == replay.TxnCommit && (cts.T != 100 || cts.I != 4) {
			t.Errorf("commitTimestamp %v, want 100:4", cts)
		}
	}
	if len(keys) != 3 || keys[0] != keys[1] || keys[1] != keys[2] || keys[0] == "" {
		t.Fatalf("keys %q: want one key for the prepare, commit and abort of one transaction", keys)
	}
}
