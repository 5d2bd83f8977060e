package retention

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

var epoch = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // a Monday

// at is the restore point h hours after epoch.
func at(h float64) optime.Timestamp {
	return optime.Timestamp{T: uint32(epoch.Add(time.Duration(h * float64(time.Hour))).Unix()), I: 1}
}

// hourly builds a timeline of one-hour segments covering [fromH, toH).
func hourly(id string, fromH, toH int) repo.Timeline {
	tl := repo.Timeline{ID: id}
	for h := fromH; h < toH; h++ {
		first, last := at(float64(h)), at(float64(h)+0.999)
		tl.Segments = append(tl.Segments, repo.SegmentInfo{Key: fmt.Sprintf("oplog/rs0/%s_%s_%s", first.Key(), last.Key(), id),
			Shard: "rs0", Timeline: id, First: first, Last: last, Size: 100})
	}
	tl.First, tl.Last = tl.Segments[0].First, tl.Segments[len(tl.Segments)-1].Last
	return tl
}

// daily snapshots at hour 24*d+1, copying for ten minutes.
func dailySnaps(fromDay, toDay int) []Snapshot {
	var out []Snapshot
	for d := fromDay; d <= toDay; d++ {
		h := float64(24*d + 1)
		out = append(out, Snapshot{Shard: "rs0", ID: fmt.Sprintf("d%02d", d), Start: at(h), End: at(h + 1.0/6)})
	}
	return out
}

func kept(d Decision) []string {
	var out []string
	for _, s := range d.Snapshots {
		if s.Keep {
			out = append(out, s.ID)
		}
	}
	sort.Strings(out)
	return out
}

// keptHours lists, per timeline, the first hour of each kept run.
func keptRuns(d Decision) []string {
	var out []string
	for _, r := range d.Runs {
		if r.Keep {
			out = append(out, fmt.Sprintf("%s:%s-%s", r.Timeline, hours(r.First), hours(r.Last)))
		}
	}
	return out
}

func hours(ts optime.Timestamp) string {
	return fmt.Sprintf("%d", int(ts.Time().Sub(epoch).Hours()))
}

func TestDecide(t *testing.T) {
	day := 24 * time.Hour
	now := epoch.Add(10*day + 12*time.Hour)
	tests := []struct {
		name      string
		policy    Policy
		timelines []repo.Timeline
		snaps     []Snapshot
		wantKeep  []string
		wantRuns  []string
		extracts  int
	}{
		{"window only keeps its anchor and what is inside",
			Policy{RestoreWindow: 3 * day}, []repo.Timeline{hourly("a", 0, 252)}, dailySnaps(0, 10),
			[]string{"d07", "d08", "d09", "d10"}, []string{"a:169-251"}, 0},
		{"daily tier keeps old snapshots with their copy range only",
			Policy{RestoreWindow: 3 * day, Daily: 3}, []repo.Timeline{hourly("a", 0, 252)}, dailySnaps(0, 10),
			[]string{"d05", "d06", "d07", "d08", "d09", "d10"}, []string{"a:169-251"}, 2},
		{"weekly and monthly pick the newest of each period",
			Policy{RestoreWindow: 3 * day, Weekly: 2, Monthly: 2}, []repo.Timeline{hourly("a", 0, 252)}, dailySnaps(0, 10),
			// d07 is the anchor (and newest of week 2); week 1 ends with d06 (Sunday), October has none.
			[]string{"d06", "d07", "d08", "d09", "d10"}, []string{"a:169-251"}, 1},
		{"newest snapshot stays even when everything is old",
			Policy{RestoreWindow: 1 * day}, []repo.Timeline{hourly("a", 0, 30)}, dailySnaps(0, 1),
			[]string{"d01"}, []string{"a:25-29"}, 0},
		{"a timeline after a gap needs its own anchor; the old one goes",
			Policy{RestoreWindow: 2 * day},
			[]repo.Timeline{hourly("a", 0, 100), hourly("b", 120, 252)}, dailySnaps(0, 10),
			[]string{"d08", "d09", "d10"}, []string{"b:193-251"}, 0},
		{"a timeline without snapshot keeps the window's oplog",
			Policy{RestoreWindow: 2 * day}, []repo.Timeline{hourly("a", 0, 252)}, nil,
			nil, []string{"a:204-251"}, 0},
		{"an idle source: the last timeline ends before the window, its anchor and oplog stay",
			Policy{RestoreWindow: 2 * day}, []repo.Timeline{hourly("a", 0, 100)}, dailySnaps(0, 3),
			[]string{"d03"}, []string{"a:73-99"}, 0},
		{"the window starts at the oldest snapshot when none is older than the cutoff",
			Policy{RestoreWindow: 5 * day}, []repo.Timeline{hourly("a", 0, 252)}, dailySnaps(7, 10),
			[]string{"d07", "d08", "d09", "d10"}, []string{"a:169-251"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Decide(tt.policy, Shard{ID: "rs0", Timelines: tt.timelines, Snapshots: tt.snaps}, now)
			if got := kept(d); !reflect.DeepEqual(got, tt.wantKeep) {
				t.Errorf("kept snapshots %v, want %v", got, tt.wantKeep)
			}
			if got := keptRuns(d); !reflect.DeepEqual(got, tt.wantRuns) {
				t.Errorf("kept segment runs %v, want %v", got, tt.wantRuns)
			}
			if len(d.Extracts) != tt.extracts {
				t.Errorf("%d extracts, want %d: %+v", len(d.Extracts), tt.extracts, d.Extracts)
			}
			checkPromisesHeld(t, d, tt.timelines)
		})
	}
}

// checkPromisesHeld checks that every promised point's snapshot is kept and
// every segment from the snapshot's start to the point is kept in place or
// extracted.
func checkPromisesHeld(t *testing.T, d Decision, tls []repo.Timeline) {
	t.Helper()
	held := map[string]bool{}
	for _, r := range d.Runs {
		for _, s := range r.Segments {
			held[s.Key] = held[s.Key] || r.Keep
		}
	}
	for _, ex := range d.Extracts {
		for _, s := range ex.Segments {
			held[s.Key] = true
		}
	}
	for _, p := range d.Promises {
		if p.From.After(p.To) {
			t.Errorf("promise %+v: from after to", p)
		}
		s := findSnapshot(d, p.Snapshot)
		for _, sd := range d.Snapshots {
			if sd.ID == p.Snapshot && !sd.Keep {
				t.Errorf("promise %+v: snapshot dropped", p)
			}
		}
		for _, tl := range tls {
			if tl.ID != p.Timeline {
				continue
			}
			for _, seg := range tl.Segments {
				if !seg.Last.Before(s.Start) && !seg.First.After(p.To) && !held[seg.Key] {
					t.Errorf("promise %s..%s from %s: segment %s dropped", p.From, p.To, p.Snapshot, seg.Key)
				}
			}
		}
	}
}

func TestDecideReasons(t *testing.T) {
	now := epoch.Add(10*24*time.Hour + 12*time.Hour)
	d := Decide(Policy{RestoreWindow: 72 * time.Hour, Daily: 1}, Shard{ID: "rs0",
		Timelines: []repo.Timeline{hourly("a", 0, 252)}, Snapshots: dailySnaps(0, 10)}, now)
	want := map[string]string{
		"d00": "older than the restore window",
		"d07": "daily 1 of 1",
		"d08": "inside the restore window",
		"d10": "newest snapshot",
	}
	for _, s := range d.Snapshots {
		if w, ok := want[s.ID]; ok && !strings.Contains(strings.Join(s.Reasons, "; "), w) {
			t.Errorf("%s reasons %q, want %q", s.ID, s.Reasons, w)
		}
	}
	if !strings.Contains(strings.Join(d.Snapshots[7].Reasons, ";"), "restore window on timeline a") {
		t.Errorf("d07 reasons %q: want the window anchor", d.Snapshots[7].Reasons)
	}
	if r := d.Runs[0]; r.Keep || !strings.Contains(r.Reason, "needed by no kept snapshot") {
		t.Errorf("first run %+v", r)
	}
}
