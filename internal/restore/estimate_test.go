package restore

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// probeDBs lists the target's probe databases (Estimate's, under
// StagingPrefix).
func probeDBs(t *testing.T, client *mongo.Client) []string {
	t.Helper()
	names, err := stagingDBs(t.Context(), client, StagingPrefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, "_probe") {
			out = append(out, n)
		}
	}
	return out
}

// A plan of 2 collections, 1,000 documents of 1 KiB, 50 entries, one
// secondary index each: the estimate has every part, from probed rates,
// and the probe's database is gone afterwards.
func TestEstimateProbesAndCleansUp(t *testing.T) {
	srv := testserver.Start(t)
	coll := func(n int64) CollectionPlan {
		return CollectionPlan{Manifest: repo.CollectionManifest{Count: n, Indexes: []bson.Raw{{}, {}}}}
	}
	p := Plan{Documents: 1000, ChunkBytes: 1000 << 10, Entries: 50, Collections: []CollectionPlan{coll(600), coll(400)}}
	var during []string
	probeHook = func() { during = probeDBs(t, srv.Client()) }
	defer func() { probeHook = nil }()
	e, err := EstimatePlan(t.Context(), srv.Client(), p, 4)
	if err != nil {
		t.Fatal(err)
	}
	if len(during) != 1 {
		t.Errorf("probe databases while probing: %v; want one", during)
	}
	if left := probeDBs(t, srv.Client()); len(left) > 0 {
		t.Errorf("the probe left %v on the target", left)
	}
	if e.DocBytes != 1024 || e.InsertRate <= 0 || e.ReplayRate <= 0 || e.CreateTime <= 0 {
		t.Fatalf("estimate %+v: want a 1 KiB document and probed insert, replay and create rates", e)
	}
	if e.IndexKeys != 1000 || e.Insert <= 0 || e.Replay <= 0 || e.Indexes != 10*time.Millisecond || e.Decode <= 0 {
		t.Errorf("estimate %+v: want 1,000 index keys and every part", e)
	}
	if e.Total != e.Setup+max(e.Decode, e.Insert)+e.Replay+e.Indexes {
		t.Errorf("total %s is not the sum of its parts: %+v", e.Total, e)
	}
	if s := e.String(); !strings.Contains(s, "probed") || !strings.HasPrefix(s, "about ") {
		t.Errorf("String() = %q", s)
	}
}

// Cancelled while it probes (Ctrl-C), the probe still drops its database.
func TestEstimateCancelledCleansUp(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	probeHook = cancel
	defer func() { probeHook = nil }()
	_, err := EstimatePlan(ctx, srv.Client(), Plan{Documents: 10, ChunkBytes: 10 << 10, Entries: 3}, 2)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled probe: %v; want context.Canceled", err)
	}
	if left := probeDBs(t, srv.Client()); len(left) > 0 {
		t.Errorf("the cancelled probe left %v on the target", left)
	}
}

// Odd plans give a finite, non-negative estimate: nothing to restore,
// documents without bytes, no probe at all (rates of 0).
func TestEstimateOddPlans(t *testing.T) {
	for _, c := range []struct {
		name string
		p    Plan
		e    Estimate
	}{
		{"empty plan, probed", Plan{}, Estimate{InsertRate: 5e6, ReplayRate: 300, CreateTime: time.Millisecond}},
		{"zero documents, entries", Plan{Entries: 7}, Estimate{InsertRate: 5e6, ReplayRate: 0}},
		{"nothing probed", Plan{Documents: 10, ChunkBytes: 1 << 20, Entries: 5}, Estimate{}},
		{"documents of no bytes", Plan{Documents: 10}, Estimate{InsertRate: 5e6}},
	} {
		e := c.e
		e.DocBytes = avgDocBytes(c.p)
		e.compute(c.p)
		for _, d := range []time.Duration{e.Total, e.Load, e.Insert, e.Replay, e.Indexes, e.Setup, e.Decode} {
			if d < 0 {
				t.Errorf("%s: negative part in %+v", c.name, e)
			}
		}
		if s := e.String(); strings.Contains(s, "NaN") || strings.Contains(s, "Inf") || strings.Contains(s, "-") {
			t.Errorf("%s: %q", c.name, s)
		}
		if e.DocBytes < minDocBytes {
			t.Errorf("%s: document of %d bytes", c.name, e.DocBytes)
		}
	}
	if got := avgDocBytes(Plan{Documents: 4, ChunkBytes: 4096}); got != 1024 {
		t.Errorf("average of 4 documents in 4 KiB: %d", got)
	}
}

// The progress line shows the time left in the load once a few seconds of
// it are measured, from the rate so far; then in the replay.
func TestProgressETA(t *testing.T) {
	var p Progress
	p.start(Plan{ChunkBytes: 1000, Documents: 40, Chunks: 4, Entries: 100})
	p.setPhase("load")
	p.addChunk(10, 250)
	if _, _, ok := p.ETA(); ok || strings.Contains(p.Line(), "ETA") {
		t.Errorf("an ETA after less than %s: %q", etaAfter, p.Line())
	}
	p.phaseStarted.Store(time.Now().Add(-10 * time.Second).UnixNano())
	left, step, ok := p.ETA()
	if !ok || step != "load" || left < 29*time.Second || left > 31*time.Second {
		t.Errorf("ETA %s in %q (%v): want 30s in load (a quarter done in 10s)", left, step, ok)
	}
	if !strings.Contains(p.Line(), "ETA 30s left in load") {
		t.Errorf("line %q: no ETA", p.Line())
	}
	p.setPhase("replay")
	p.phaseStarted.Store(time.Now().Add(-4 * time.Second).UnixNano())
	if _, _, ok := p.ETA(); ok {
		t.Error("an ETA in the replay before any entry was read")
	}
	p.addSegment(80, 80, 100)
	if left, step, ok := p.ETA(); !ok || step != "replay" || left.Round(time.Second) != time.Second {
		t.Errorf("ETA %s in %q (%v): want 1s in replay (80 of 100 entries in 4s)", left, step, ok)
	}
	p.setPhase("indexes")
	if _, _, ok := p.ETA(); ok {
		t.Error("an ETA in the index builds")
	}
}
