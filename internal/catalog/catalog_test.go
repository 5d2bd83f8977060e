package catalog

import (
	"reflect"
	"testing"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

func ts(t uint32) optime.Timestamp { return optime.Timestamp{T: t, I: 1} }

// tl builds a timeline from segment bounds (pairs of seconds).
func tl(id string, bounds ...uint32) repo.Timeline {
	t := repo.Timeline{ID: id}
	for i := 0; i+1 < len(bounds); i += 2 {
		t.Segments = append(t.Segments, repo.SegmentInfo{Timeline: id, First: ts(bounds[i]), Last: ts(bounds[i+1])})
	}
	t.First, t.Last = t.Segments[0].First, t.Segments[len(t.Segments)-1].Last
	return t
}

func man(id string, start, end uint32) repo.Manifest {
	return repo.Manifest{ID: id, Shard: "rs0", Start: ts(start), End: ts(end),
		Collections: []repo.CollectionManifest{{DB: "d", Name: "c", Count: 3, Bytes: 30,
			Chunks: []repo.ChunkRef{{Count: 2, Bytes: 20}, {Count: 1, Bytes: 10}}}}}
}

func win(snap, timeline string, from, to uint32) Window {
	return Window{Shard: "rs0", Snapshot: snap, Timeline: timeline, From: ts(from), To: ts(to)}
}

func TestDerive(t *testing.T) {
	tests := []struct {
		name      string
		timelines []repo.Timeline
		manifests []repo.Manifest
		want      []Window
	}{
		{"nothing", nil, nil, nil},
		{"oplog but no snapshot", []repo.Timeline{tl("a", 10, 20)}, nil, nil},
		{"snapshot inside a timeline", []repo.Timeline{tl("a", 10, 20, 21, 40)},
			[]repo.Manifest{man("s1", 15, 18)}, []Window{win("s1", "a", 18, 40)}},
		{"snapshot copy starts at the timeline's first entry", []repo.Timeline{tl("a", 10, 20)},
			[]repo.Manifest{man("s1", 10, 12)}, []Window{win("s1", "a", 12, 20)}},
		{"snapshot before capture started: no window", []repo.Timeline{tl("a", 10, 20)},
			[]repo.Manifest{man("s1", 5, 12)}, nil},
		{"snapshot whose oplog is not captured yet", []repo.Timeline{tl("a", 10, 20)},
			[]repo.Manifest{man("s1", 15, 25)}, nil},
		{"quiescent snapshot without oplog is one point", nil,
			[]repo.Manifest{man("s1", 30, 30)}, []Window{win("s1", "", 30, 30)}},
		{"gap ends the window; the next timeline needs its own snapshot",
			[]repo.Timeline{tl("a", 10, 20), tl("b", 30, 50)},
			[]repo.Manifest{man("s1", 12, 14), man("s2", 35, 36)},
			[]Window{win("s1", "a", 14, 20), win("s2", "b", 36, 50)}},
		{"two snapshots on one timeline overlap",
			[]repo.Timeline{tl("a", 10, 50)},
			[]repo.Manifest{man("s2", 30, 31), man("s1", 12, 14)},
			[]Window{win("s1", "a", 14, 50), win("s2", "a", 31, 50)}},
		{"snapshot ending exactly at the last entry", []repo.Timeline{tl("a", 10, 20)},
			[]repo.Manifest{man("s1", 18, 20)}, []Window{win("s1", "a", 20, 20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Derive("rs0", repo.History{Timelines: tt.timelines}, tt.manifests)
			if !reflect.DeepEqual(got.Windows, tt.want) {
				t.Fatalf("windows\n got %+v\nwant %+v", got.Windows, tt.want)
			}
		})
	}
}

func TestSnapshotFigures(t *testing.T) {
	s := Derive("rs0", repo.History{}, []repo.Manifest{man("s1", 30, 30)}).Snapshots[0]
	if s.Documents != 3 || s.Bytes != 30 || s.Chunks != 2 || s.Collections != 1 {
		t.Fatalf("figures = %+v", s)
	}
}

func TestNearestAndSpan(t *testing.T) {
	sh := Derive("rs0", repo.History{Timelines: []repo.Timeline{tl("a", 10, 20), tl("b", 30, 50)}},
		[]repo.Manifest{man("s1", 12, 14), man("s2", 35, 36), man("s3", 40, 41)})
	before, after := sh.Nearest(ts(25))
	if before == nil || before.Snapshot != "s1" || after == nil || after.Snapshot != "s2" {
		t.Fatalf("nearest to 25 = %+v, %+v", before, after)
	}
	before, after = sh.Nearest(ts(5))
	if before != nil || after == nil || after.Snapshot != "s1" {
		t.Fatalf("nearest to 5 = %+v, %+v", before, after)
	}
	want := []Window{{Shard: "rs0", From: ts(14), To: ts(20)}, {Shard: "rs0", From: ts(36), To: ts(50)}}
	if got := sh.Span(); !reflect.DeepEqual(got, want) {
		t.Fatalf("span = %+v, want %+v", got, want)
	}
}
