package agent_test

import (
	"context"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// The source's oplog rolls past the resume point while the agent is down:
// the agent records a gap with its bounds, starts a new timeline, and
// `rewind status` reports the gap.
func TestCaptureRecordsGap(t *testing.T) {
	t.Parallel()
	srv := testserver.Start(t)
	if srv.External() {
		// A real replica set's oplog cannot be truncated on demand; the
		// rollover is simulated only on the test server.
		t.Skip("rollover cannot be simulated on an external replica set")
	}
	url := newRepo(t)
	a := startAgent(t, agentConfig(t, srv, url))
	runWorkload(t, srv, 10, 100, "a")
	resume := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return a.Stats().LastDurable() }, resume, 30*time.Second)
	must(t, a.stop(t))

	runWorkload(t, srv, 11, 100, "b")
	firstKept := rollOver(t, srv, resume, 20)

	b := startAgent(t, agentConfig(t, srv, url))
	newest := newestOplogTS(t, srv.Client())
	waitDurable(t, func() optime.Timestamp { return b.Stats().LastDurable() }, newest, 30*time.Second)
	must(t, b.stop(t))

	st := statusJSON(t, url)
	gaps := st["gaps"].([]any)
	if len(gaps) != 1 {
		t.Fatalf("status reports %d gaps, want 1: %v", len(gaps), st)
	}
	g := gaps[0].(map[string]any)
	if got := jsonTS(g["before"]); got != resume {
		t.Errorf("gap starts after %s, want the last entry captured before it, %s", got, resume)
	}
	if got := jsonTS(g["after"]); got != firstKept {
		t.Errorf("gap ends at %s, want the oldest entry left in the oplog, %s", got, firstKept)
	}
	if tls := st["timelines"].([]any); len(tls) != 2 {
		t.Fatalf("want two timelines around the gap, got %d", len(tls))
	}
	// Everything from the first entry left after the gap is captured.
	got, h := repoEntries(t, url)
	second := h.Timelines[1]
	if second.First != firstKept {
		t.Fatalf("new timeline starts at %s, want %s", second.First, firstKept)
	}
	n := countEntries(t, got, h.Timelines[0].Last)
	assertSameEntries(t, got[n:], sourceOplog(t, srv.Client(), firstKept, newest))
}

// rollOver deletes the oldest oplog entries up to and including the skip-th
// entry after resume, as a capped oplog rolling over would, and returns the
// ts of the oldest entry left.
func rollOver(t *testing.T, srv *testserver.Server, resume optime.Timestamp, skip int) optime.Timestamp {
	t.Helper()
	ctx := context.Background()
	oplogColl := srv.Client().Database("local").Collection("oplog.rs")
	after := sourceOplog(t, srv.Client(), resume, newestOplogTS(t, srv.Client()))
	if len(after) < skip+2 {
		t.Fatalf("only %d entries after the resume point", len(after))
	}
	cut, _ := optime.OfEntry(after[skip])
	kept, _ := optime.OfEntry(after[skip+1])
	_, err := oplogColl.DeleteMany(ctx, bson.D{{Key: "ts", Value: bson.D{{Key: "$lte", Value: bson.Timestamp{T: cut.T, I: cut.I}}}}})
	if err != nil {
		t.Fatalf("simulate rollover: %v", err)
	}
	raw, err := oplogColl.FindOne(ctx, bson.D{}, options.FindOne().SetSort(bson.D{{Key: "$natural", Value: 1}})).Raw()
	if err != nil {
		t.Fatal(err)
	}
	if oldest, _ := optime.OfEntry(raw); oldest != kept {
		t.Fatalf("after the simulated rollover the oldest entry is %s, want %s", oldest, kept)
	}
	return kept
}

// countEntries counts the entries up to and including ts.
func countEntries(t *testing.T, entries []bson.Raw, ts optime.Timestamp) int {
	for i, e := range entries {
		if got, _ := optime.OfEntry(e); got == ts {
			return i + 1
		}
	}
	t.Fatalf("entry %s not found", ts)
	return 0
}

func jsonTS(v any) optime.Timestamp {
	m, _ := v.(map[string]any)
	t, _ := m["t"].(float64)
	i, _ := m["i"].(float64)
	return optime.Timestamp{T: uint32(t), I: uint32(i)}
}
