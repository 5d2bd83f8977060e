package retention

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
)

// TestHoldSegmentsKeepsOneRun: segments s1..s7, s4 and s5 kept by the
// policy, the rest dropped; the lock still retains s2 and s7. Prune may
// delete s1 only: s3 would leave a hole between s2 and the kept run, and
// s6 one between the kept run and s7. The held stretches are reported with
// the latest retention among them.
func TestHoldSegmentsKeepsOneRun(t *testing.T) {
	var segs []repo.SegmentInfo
	for i := 1; i <= 7; i++ {
		segs = append(segs, repo.SegmentInfo{Key: fmt.Sprintf("s%d", i), Timeline: "tl", First: at(float64(i)), Last: at(float64(i) + 0.5), Size: 10})
	}
	run := func(keep bool, ss ...repo.SegmentInfo) SegmentRun {
		return SegmentRun{Timeline: "tl", First: ss[0].First, Last: ss[len(ss)-1].Last, Segments: ss, Keep: keep, Reason: fmt.Sprint(keep)}
	}
	d := Decision{Runs: []SegmentRun{run(false, segs[:3]...), run(true, segs[3:5]...), run(false, segs[5:]...)},
		Extracts: []Extract{{ID: "tl.held", Segments: segs[1:3]}, {ID: "tl.copied", Segments: segs[0:2]}}}
	now := epoch.Add(1000 * time.Hour)
	until := map[string]time.Time{"s2": now.Add(time.Hour), "s7": now.Add(2 * time.Hour), "s3": now.Add(-time.Hour)}
	retained := func(key string) (time.Time, bool) { u, ok := until[key]; return u, ok && u.After(now) }

	var res Result
	res.holdSegments(&d, retained)
	var got []string
	for _, r := range d.Runs {
		var keys []string
		for _, s := range r.Segments {
			keys = append(keys, s.Key)
		}
		got = append(got, fmt.Sprintf("%s:%v", strings.Join(keys, ","), r.Keep))
	}
	if want := "s1:false s2,s3:true s4,s5:true s6,s7:true"; strings.Join(got, " ") != want {
		t.Fatalf("runs %v, want %s", got, want)
	}
	if len(d.Extracts) != 1 || d.Extracts[0].ID != "tl.copied" {
		t.Errorf("extracts %+v: want only the one not wholly held", d.Extracts)
	}
	if len(res.Held) != 2 || !res.Held[0].Until.Equal(now.Add(time.Hour)) || !res.Held[1].Until.Equal(now.Add(2*time.Hour)) ||
		res.Held[0].Bytes != 20 || !strings.Contains(res.Held[1].What, "2 segments of timeline tl") {
		t.Errorf("held %+v", res.Held)
	}
	if dropped := deleteOrder(d); len(dropped) != 1 || dropped[0].Key != "s1" {
		t.Errorf("delete order %v, want s1 only", dropped)
	}
}
