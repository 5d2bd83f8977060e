package repo

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage"
)

// PlanCompaction groups consecutive segments (as returned by ListSegments) of
// the same timeline into runs whose stored sizes add up to at most
// targetSize. Only runs of two or more segments are returned.
func PlanCompaction(segs []SegmentInfo, targetSize int64) [][]SegmentInfo {
	var plan [][]SegmentInfo
	var run []SegmentInfo
	var size int64
	flush := func() {
		if len(run) > 1 {
			plan = append(plan, run)
		}
		run, size = nil, 0
	}
	for _, s := range segs {
		// Never merge across a missing segment: the merged one would hide
		// the hole.
		chained := len(run) == 0 || s.Prev.IsZero() || s.Prev == run[len(run)-1].Last
		if len(run) > 0 && (s.Timeline != run[0].Timeline || size+s.Size > targetSize || !chained) {
			flush()
		}
		if s.Size >= targetSize {
			flush() // already big enough; a run never spans it
			continue
		}
		run = append(run, s)
		size += s.Size
	}
	flush()
	return plan
}

// CompactSegments merges a run of consecutive segments of one timeline into
// one segment: it writes the merged segment first, then deletes the small
// ones. A reader listing in between sees the small ones hidden by the merged
// one (see ListSegments), so it never sees a hole or an overlap. Reading the
// segments needs the identity of an encrypted repository. The caller holds
// the exclusive lock.
func (r *Repository) CompactSegments(ctx context.Context, run []SegmentInfo) (SegmentInfo, error) {
	if err := r.checkRun(ctx, run); err != nil {
		return SegmentInfo{}, err
	}
	var merged []bson.Raw
	size := 0
	for _, s := range run {
		entries, err := r.ReadSegment(ctx, s)
		if err != nil {
			return SegmentInfo{}, fmt.Errorf("compact segments: %w", err)
		}
		for _, e := range entries {
			// Overlapping segments (a capture that re-sent its tail) hold
			// some entries twice: keep the first copy.
			if len(merged) > 0 {
				ts, _ := optime.OfEntry(e) // checked by ReadSegment
				last, _ := optime.OfEntry(merged[len(merged)-1])
				if !ts.After(last) {
					continue
				}
			}
			merged = append(merged, e)
			size += len(e)
		}
	}
	if size > MaxObjectSize {
		return SegmentInfo{}, fmt.Errorf("compact segments: merged size %d exceeds the %d-byte object limit; compact fewer segments: %w",
			size, MaxObjectSize, ErrInvalid)
	}
	out, err := r.WriteSegmentAfter(ctx, run[0].Shard, run[0].Timeline, run[0].Prev, merged)
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("compact segments: %w", err)
	}
	var old []SegmentInfo
	for _, s := range run {
		if s.Key != out.Key {
			old = append(old, s)
		}
	}
	// Under an object lock the small segments may be retained: hidden by
	// the merged one, they stay until a prune removes them as orphans.
	if err := r.deleteSegments(ctx, old); err != nil && !errors.Is(err, storage.ErrRetained) {
		return out, fmt.Errorf("compact segments: merged into %s, remove the rest: %w", out.Key, err)
	}
	return out, nil
}

// checkRun verifies that run is a consecutive run of currently visible
// segments of one timeline: merging segments with another one between them
// would hide that one and lose its entries.
func (r *Repository) checkRun(ctx context.Context, run []SegmentInfo) error {
	if len(run) < 2 {
		return fmt.Errorf("compact segments: need at least two segments: %w", ErrInvalid)
	}
	visible, err := r.ListSegments(ctx, run[0].Shard)
	if err != nil {
		return fmt.Errorf("compact segments: %w", err)
	}
	start := -1
	for i, s := range visible {
		if s.Key == run[0].Key {
			start = i
			break
		}
	}
	if start < 0 || start+len(run) > len(visible) {
		return fmt.Errorf("compact segments: %s is not a visible segment: %w", run[0].Key, ErrInvalid)
	}
	for i, s := range run {
		v := visible[start+i]
		if v.Key != s.Key || s.Shard != run[0].Shard || s.Timeline != run[0].Timeline {
			return fmt.Errorf("compact segments: %s is not the next segment of timeline %s (found %s): %w",
				s.Key, run[0].Timeline, v.Key, ErrInvalid)
		}
		if i > 0 && !s.Prev.IsZero() && s.Prev != run[i-1].Last {
			return fmt.Errorf("compact segments: a segment is missing before %s: %w", s.Key, ErrInvalid)
		}
	}
	return nil
}
