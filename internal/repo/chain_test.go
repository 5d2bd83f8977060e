package repo

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/optime"
)

// A segment deleted from the middle of a timeline shows as a hole: History
// splits the timeline there and reports a gap, and compaction never merges
// across it (which would hide the hole).
func TestMissingSegmentIsAHole(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, CompressionZstd)
	rng := rand.New(rand.NewPCG(1, 2))
	var segs []SegmentInfo
	prev := optime.Zero
	for i := range 4 {
		es := entries(rng, uint32(1000+10*i), 3, 100)
		s, err := r.WriteSegmentAfter(ctx, "rs0", "tl1", prev, es)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, s)
		prev = s.Last
	}
	h, err := r.History(ctx, "rs0")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Timelines) != 1 || len(h.Gaps) != 0 {
		t.Fatalf("whole chain: %d timelines, %d gaps; want 1, 0", len(h.Timelines), len(h.Gaps))
	}
	if err := r.Store().Delete(ctx, segs[2].Key); err != nil {
		t.Fatal(err)
	}
	h, err = r.History(ctx, "rs0")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Timelines) != 2 || len(h.Gaps) != 1 {
		t.Fatalf("after deleting a middle segment: %d timelines, %d gaps; want 2, 1", len(h.Timelines), len(h.Gaps))
	}
	g := h.Gaps[0]
	if g.Before != segs[1].Last || g.After != segs[3].First || !strings.Contains(g.Reason, "missing oplog segment") {
		t.Errorf("gap %+v, want %s..%s for a missing segment", g, segs[1].Last, segs[3].First)
	}
	if h.Timelines[0].Last != segs[1].Last || h.Timelines[1].First != segs[3].First || h.Timelines[1].ID == h.Timelines[0].ID {
		t.Errorf("timeline parts %+v", h.Timelines)
	}
	visible, err := r.ListSegments(ctx, "rs0")
	if err != nil {
		t.Fatal(err)
	}
	for _, run := range PlanCompaction(visible, 1<<30) {
		for i := 1; i < len(run); i++ {
			if run[i].Prev != run[i-1].Last {
				t.Fatalf("compaction plan merges across the hole: %v", run)
			}
		}
	}
	if _, err := r.CompactSegments(ctx, visible[1:3]); err == nil {
		t.Fatal("compacting across a missing segment was allowed")
	}
}
