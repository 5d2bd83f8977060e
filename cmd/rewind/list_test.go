package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// TestListShowsGaps prints a history with a gap: two timelines, a snapshot
// on each, and the gap between them with both ends.
func TestListShowsGaps(t *testing.T) {
	ts := func(s uint32) optime.Timestamp { return optime.Timestamp{T: 1764000000 + s, I: 1} }
	tl := func(id string, a, b uint32) repo.Timeline {
		seg := repo.SegmentInfo{Timeline: id, First: ts(a), Last: ts(b), Size: 2048}
		return repo.Timeline{ID: id, Info: &repo.TimelineInfo{Flavor: "mongodb"}, First: ts(a), Last: ts(b), Segments: []repo.SegmentInfo{seg}}
	}
	h := repo.History{Timelines: []repo.Timeline{tl("t1", 0, 100), tl("t2", 500, 900)},
		Gaps: []repo.Gap{{Before: ts(100), After: ts(500), Detected: time.Date(2025, 11, 24, 16, 0, 0, 0, time.UTC)}}}
	ms := []repo.Manifest{{ID: "s1", Start: ts(10), End: ts(20)}, {ID: "s2", Start: ts(600), End: ts(610),
		Collections: []repo.CollectionManifest{{DB: "shop", Name: "orders", Count: 5, Bytes: 3 << 20}}}}
	var b bytes.Buffer
	if err := printList(&b, listOf(catalog.Catalog{Shards: []catalog.Shard{catalog.Derive("rs0", h, ms)}})); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"shard rs0",
		"2025-11-24T16:00:20Z (1764000020:1)  2025-11-24T16:01:40Z (1764000100:1)  s1",
		"2025-11-24T16:10:10Z (1764000610:1)  2025-11-24T16:15:00Z (1764000900:1)  s2",
		"GAPS", "2025-11-24T16:01:40Z (1764000100:1)  2025-11-24T16:08:20Z (1764000500:1)",
		"s2  ", "3.0 MiB", "t2", "mongodb", "2.0 KiB",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	var empty bytes.Buffer
	if err := printList(&empty, listOf(catalog.Catalog{})); err != nil || !strings.Contains(empty.String(), "empty") {
		t.Fatalf("empty repository: %q %v", empty.String(), err)
	}
}

// TestListShowsClusterWindows prints a cluster: its windows are the
// intersection of its shards' (each shard's reaching its covered-through
// time: the idle shard's last entry is long before), and each shard shows
// how far it is covered.
func TestListShowsClusterWindows(t *testing.T) {
	ts := func(s uint32) optime.Timestamp { return optime.Timestamp{T: 1764000000 + s, I: 1} }
	shard := func(id string, end, last, covered uint32) catalog.Shard {
		seg := repo.SegmentInfo{Timeline: "t-" + id, First: ts(end - 5), Last: ts(last), Size: 2048}
		h := repo.History{Timelines: []repo.Timeline{{ID: "t-" + id, First: ts(end - 5), Last: ts(last), Segments: []repo.SegmentInfo{seg}}}}
		sh := catalog.Derive(id, h, []repo.Manifest{{ID: "s-" + id, Shard: id, Start: ts(end - 1), End: ts(end)}})
		sh.Covered = ts(covered)
		return sh
	}
	cat := catalog.Catalog{Cluster: []string{"alpha", "idle"}, Shards: []catalog.Shard{shard("alpha", 100, 400, 420), shard("idle", 50, 60, 410)}}
	var b bytes.Buffer
	if err := printList(&b, listOf(cat)); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"cluster (shards alpha, idle)",
		"2025-11-24T16:01:40Z (1764000100:1)  2025-11-24T16:06:50Z (1764000410:1)",
		"shard idle\ncovered through 2025-11-24T16:06:50Z (1764000410:1)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}
	var j bytes.Buffer
	if err := printJSON(&j, listOf(cat)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(j.String(), `"cluster": {`) || !strings.Contains(j.String(), `"covered_through": {`) {
		t.Errorf("list --json lacks the cluster or a shard's covered_through:\n%s", j.String())
	}
}
