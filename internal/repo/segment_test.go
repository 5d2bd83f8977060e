package repo

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

func TestSegmentsWriteListRead(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	rng := rngFor(t)
	var want []SegmentInfo
	for i := 0; i < 5; i++ {
		s, err := r.WriteSegment(ctx, "rs0", "tl1", entries(rng, uint32(1000+10*i), 6, 100))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, s)
	}
	got, err := r.ListSegments(ctx, "rs0")
	if err != nil || len(got) != 5 {
		t.Fatalf("list: %d, %v", len(got), err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("segment %d: %+v, want %+v", i, got[i], want[i])
		}
		es, err := r.ReadSegment(ctx, got[i])
		if err != nil || len(es) != 6 {
			t.Fatalf("read %s: %d, %v", got[i].Key, len(es), err)
		}
	}
	if want[0].First != tsOf(1000, 1) || want[0].Last != tsOf(1001, 3) {
		t.Fatalf("range %s..%s", want[0].First, want[0].Last)
	}
	for k := range st.objs {
		if strings.Contains(k, "secret") {
			t.Fatalf("key %q holds a user name", k)
		}
	}
	if other, _ := r.ListSegments(ctx, "rs1"); len(other) != 0 {
		t.Fatalf("other shard sees %d segments", len(other))
	}
}

func TestWriteSegmentRejects(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	rng := rngFor(t)
	es := entries(rng, 10, 3, 10)
	noTS, _ := bson.Marshal(bson.D{{Key: "op", Value: "n"}})
	cases := map[string]struct {
		shard, tl string
		es        []bson.Raw
	}{
		"empty":         {"rs0", "t", nil},
		"out of order":  {"rs0", "t", []bson.Raw{es[1], es[0]}},
		"duplicate ts":  {"rs0", "t", []bson.Raw{es[0], es[0]}},
		"no ts":         {"rs0", "t", []bson.Raw{noTS}},
		"shard slash":   {"rs/0", "t", es},
		"shard dotdot":  {"a..b", "t", es},
		"timeline _":    {"rs0", "t_1", es},
		"shard too big": {strings.Repeat("x", 65), "t", es},
	}
	for name, c := range cases {
		if _, err := r.WriteSegment(ctx, c.shard, c.tl, c.es); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

func TestReadSegmentKeyMismatch(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	s, err := r.WriteSegment(ctx, "rs0", "tl1", entries(rngFor(t), 10, 3, 10))
	if err != nil {
		t.Fatal(err)
	}
	// The same object copied under a key that claims another range.
	moved := s
	moved.Last = tsOf(99, 1)
	moved.Key = segmentKey("rs0", "tl1", moved.First, moved.Last, moved.Prev)
	st.set(moved.Key, st.raw(s.Key))
	if _, err := r.ReadSegment(ctx, moved); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), moved.Key) {
		t.Fatalf("moved segment: %v", err)
	}
}

func seg(tl string, f, l uint32) SegmentInfo {
	first, last := tsOf(f, 1), tsOf(l, 1)
	return SegmentInfo{Key: segmentKey("rs0", tl, first, last, optime.Zero), Shard: "rs0", Timeline: tl, First: first, Last: last}
}

func TestReadEntriesSkipsOverlap(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	es := entries(rngFor(t), 100, 9, 20) // ts 100:1 .. 102:3
	if _, err := r.WriteSegment(ctx, "rs0", "t", es[:5]); err != nil {
		t.Fatal(err)
	}
	if _, err := r.WriteSegment(ctx, "rs0", "t", es[3:]); err != nil { // re-sent tail
		t.Fatal(err)
	}
	segs, _ := r.ListSegments(ctx, "rs0")
	if len(segs) != 2 {
		t.Fatalf("%d segments", len(segs))
	}
	var got []bson.Raw
	after, _ := optime.OfEntry(es[1])
	err := r.ReadEntries(ctx, segs, after, func(_ optime.Timestamp, e bson.Raw) error {
		got = append(got, e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	assertSameEntries(t, es[2:], got)
}

func TestPlanCompaction(t *testing.T) {
	sized := func(s SegmentInfo, size int64) SegmentInfo { s.Size = size; return s }
	segs := []SegmentInfo{sized(seg("a", 1, 1), 10), sized(seg("a", 2, 2), 10), sized(seg("a", 3, 3), 100),
		sized(seg("a", 4, 4), 10), sized(seg("a", 5, 5), 10), sized(seg("b", 6, 6), 10), sized(seg("b", 7, 7), 10),
		sized(seg("b", 8, 8), 10)}
	plan := PlanCompaction(segs, 25)
	want := [][]uint32{{1, 2}, {4, 5}, {6, 7}}
	if len(plan) != len(want) {
		t.Fatalf("plan %v", plan)
	}
	for i, run := range plan {
		if len(run) != len(want[i]) || run[0].First.T != want[i][0] || run[len(run)-1].First.T != want[i][1] {
			t.Fatalf("run %d: %v, want %v", i, run, want[i])
		}
	}
}

func TestVisibleSegmentsRule(t *testing.T) {
	cases := []struct {
		name     string
		all, out []SegmentInfo
	}{
		{"plain", []SegmentInfo{seg("a", 1, 2), seg("a", 3, 4)}, []SegmentInfo{seg("a", 1, 2), seg("a", 3, 4)}},
		{"merged written, small not yet deleted",
			[]SegmentInfo{seg("a", 1, 2), seg("a", 3, 4), seg("a", 5, 6), seg("a", 1, 6), seg("a", 7, 8)},
			[]SegmentInfo{seg("a", 1, 6), seg("a", 7, 8)}},
		{"half deleted", []SegmentInfo{seg("a", 1, 6), seg("a", 5, 6)}, []SegmentInfo{seg("a", 1, 6)}},
		{"merged in the middle", []SegmentInfo{seg("a", 1, 2), seg("a", 3, 4), seg("a", 5, 6), seg("a", 3, 6)},
			[]SegmentInfo{seg("a", 1, 2), seg("a", 3, 6)}},
		{"other timeline is never hidden", []SegmentInfo{seg("a", 1, 9), seg("b", 3, 4)},
			[]SegmentInfo{seg("a", 1, 9), seg("b", 3, 4)}},
		{"partial overlap kept", []SegmentInfo{seg("a", 1, 4), seg("a", 3, 6)}, []SegmentInfo{seg("a", 1, 4), seg("a", 3, 6)}},
	}
	for _, c := range cases {
		got := visibleSegments(c.all)
		if len(got) != len(c.out) {
			t.Errorf("%s: %v, want %v", c.name, got, c.out)
			continue
		}
		for i := range got {
			if got[i] != c.out[i] {
				t.Errorf("%s: %v, want %v", c.name, got, c.out)
			}
		}
	}
}

// TestCompactSegments checks what a reader sees at every step of a
// compaction: the same entries, with no hole and no duplicate.
func TestCompactSegments(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, newIdentity(t), "")
	rng := rngFor(t)
	for i := 0; i < 6; i++ {
		if _, err := r.WriteSegment(ctx, "rs0", "tl1", entries(rng, uint32(100+10*i), 4, 50)); err != nil {
			t.Fatal(err)
		}
	}
	before := readAll(t, r)
	segs, _ := r.ListSegments(ctx, "rs0")
	// Not consecutive: would hide segs[2]'s entries.
	if _, err := r.CompactSegments(ctx, []SegmentInfo{segs[1], segs[3]}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("non-consecutive run: %v", err)
	}
	plan := PlanCompaction(segs, segs[0].Size*3+1)
	if len(plan) != 2 || len(plan[0]) != 3 || len(plan[1]) != 3 {
		t.Fatalf("plan %v", plan)
	}
	first := mustRead(t, r, segs[0])
	merged, err := r.CompactSegments(ctx, plan[0])
	if err != nil {
		t.Fatal(err)
	}
	if merged.First != segs[0].First || merged.Last != segs[2].Last {
		t.Fatalf("merged %s..%s", merged.First, merged.Last)
	}
	// Mid-compaction state (merged written, a small one not yet deleted):
	// the small one is hidden.
	if _, err := r.WriteSegment(ctx, "rs0", "tl1", first); err != nil {
		t.Fatal(err)
	}
	assertSameEntries(t, before, readAll(t, r))
	if _, err := r.CompactSegments(ctx, plan[1]); err != nil {
		t.Fatal(err)
	}
	after, _ := r.ListSegments(ctx, "rs0")
	if len(after) != 2 {
		t.Fatalf("after compaction: %d segments", len(after))
	}
	assertSameEntries(t, before, readAll(t, r))
}

func mustRead(t *testing.T, r *Repository, s SegmentInfo) []bson.Raw {
	t.Helper()
	es, err := r.ReadSegment(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

func readAll(t *testing.T, r *Repository) []bson.Raw {
	t.Helper()
	segs, err := r.ListSegments(context.Background(), "rs0")
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	for _, s := range segs {
		out = append(out, mustRead(t, r, s)...)
	}
	return out
}

func assertSameEntries(t *testing.T, want, got []bson.Raw) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range got {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("entry %d differs", i)
		}
	}
}

func TestTimelinesAndGaps(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	rng := rngFor(t)
	started := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	if err := r.WriteTimeline(ctx, TimelineInfo{Shard: "rs0", ID: "aaa", Flavor: "ferretdb", Started: started}); err != nil {
		t.Fatal(err)
	}
	s1, _ := r.WriteSegment(ctx, "rs0", "aaa", entries(rng, 100, 3, 10))
	gap := Gap{Shard: "rs0", Before: s1.Last, After: tsOf(500, 1), Detected: started.Add(time.Hour), Reason: "oplog rolled over"}
	if err := r.RecordGap(ctx, gap); err != nil {
		t.Fatal(err)
	}
	if err := r.RecordGap(ctx, Gap{Shard: "rs0", Before: tsOf(5, 1), After: tsOf(4, 1)}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("inverted gap: %v", err)
	}
	// The second timeline's id sorts before the first's: order comes from
	// timestamps, not ids.
	if err := r.WriteTimeline(ctx, TimelineInfo{Shard: "rs0", ID: "0bb", Flavor: "ferretdb", Started: started}); err != nil {
		t.Fatal(err)
	}
	r.WriteSegment(ctx, "rs0", "0bb", entries(rng, 500, 3, 10))
	r.WriteSegment(ctx, "rs0", "0bb", entries(rng, 600, 3, 10))
	h, err := r.History(ctx, "rs0")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Timelines) != 2 || h.Timelines[0].ID != "aaa" || h.Timelines[1].ID != "0bb" ||
		len(h.Timelines[1].Segments) != 2 || h.Timelines[1].Last != tsOf(600, 3) {
		t.Fatalf("history %+v", h)
	}
	if h.Timelines[0].Info == nil || h.Timelines[0].Info.Flavor != "ferretdb" || !h.Timelines[0].Info.Started.Equal(started) {
		t.Fatalf("timeline info %+v", h.Timelines[0].Info)
	}
	if len(h.Gaps) != 1 || h.Gaps[0].Before != gap.Before || h.Gaps[0].After != gap.After || h.Gaps[0].Reason != gap.Reason {
		t.Fatalf("gaps %+v", h.Gaps)
	}
	shards, _ := r.Shards(ctx)
	if len(shards) != 1 || shards[0] != "rs0" {
		t.Fatalf("shards %v", shards)
	}
}

func TestHeartbeat(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, newIdentity(t), "")
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	hb := Heartbeat{Shard: "rs0", Host: "db1", PID: 42, Started: now, Updated: now.Add(time.Minute),
		LastDurable: optime.Timestamp{T: 7, I: 1}, Lag: 1500 * time.Millisecond}
	if err := r.WriteHeartbeat(ctx, hb); err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadHeartbeat(ctx, "rs0")
	if err != nil || got.Host != "db1" || got.PID != 42 || got.Lag != hb.Lag || got.LastDurable != hb.LastDurable ||
		!got.Updated.Equal(hb.Updated) {
		t.Fatalf("heartbeat %+v, %v", got, err)
	}
}

// Covers is the one rule for whether a timeline replays over a snapshot's
// copy range; a timeline that began on an empty oplog also covers a
// snapshot taken on that empty oplog, whose start is a clock anchor before
// the timeline's first entry.
func TestTimelineCovers(t *testing.T) {
	seg := func(first, last, prev uint32) SegmentInfo {
		return SegmentInfo{First: tsOf(first, 1), Last: tsOf(last, 1), Prev: tsOf(prev, 0)}
	}
	normal := Timeline{ID: TimelineID(tsOf(100, 1)), First: tsOf(100, 1), Last: tsOf(200, 1),
		Segments: []SegmentInfo{seg(100, 150, 0), {First: tsOf(151, 1), Last: tsOf(200, 1), Prev: tsOf(150, 1)}}}
	fromStart := normal
	fromStart.ID = TimelineID(tsOf(0, 0))
	later := fromStart
	later.Segments = later.Segments[1:] // its first segment is missing: a later part
	anchor := tsOf(90, 0)
	for _, tc := range []struct {
		name       string
		tl         Timeline
		start, end optime.Timestamp
		empty      bool
		want       bool
	}{
		{"inside", normal, tsOf(120, 1), tsOf(130, 1), false, true},
		{"starts before the timeline", normal, tsOf(99, 1), tsOf(130, 1), false, false},
		{"ends after the timeline", normal, tsOf(120, 1), tsOf(201, 1), false, false},
		{"empty-oplog snapshot, ordinary timeline", normal, anchor, anchor, true, false},
		{"empty-oplog snapshot, timeline from the oplog's start", fromStart, anchor, anchor, true, true},
		{"empty-oplog snapshot, writes during the copy", fromStart, anchor, tsOf(120, 1), true, true},
		{"ordinary snapshot before a from-start timeline", fromStart, anchor, anchor, false, false},
		{"a from-start timeline missing its first segment", later, anchor, anchor, true, false},
		{"no segments", Timeline{ID: TimelineID(tsOf(0, 0))}, anchor, anchor, true, false},
	} {
		if got := tc.tl.Covers(tc.start, tc.end, tc.empty); got != tc.want {
			t.Errorf("%s: Covers = %v, want %v", tc.name, got, tc.want)
		}
	}
}
