package repo

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// SegmentInfo names one oplog segment. Everything but Size is read from its
// key, so a listing alone gives the timeline.
type SegmentInfo struct {
	Key      string
	Shard    string
	Timeline string
	First    optime.Timestamp // ts of the first entry
	Last     optime.Timestamp // ts of the last entry
	// Prev is the last ts of the segment written before this one on the same
	// timeline (zero for a timeline's first segment, or when the writer did
	// not know it). It chains segments so a missing one is a visible hole,
	// not silently lost entries.
	Prev optime.Timestamp
	Size int64 // stored (encoded) size in bytes
}

// entryRange checks that entries are non-empty with strictly increasing ts
// and returns the first and last ts.
func entryRange(entries []bson.Raw) (first, last optime.Timestamp, err error) {
	if len(entries) == 0 {
		return first, last, errors.New("no oplog entries")
	}
	for n, e := range entries {
		ts, err := optime.OfEntry(e)
		if err != nil {
			return first, last, fmt.Errorf("entry %d: %w", n, err)
		}
		if n == 0 {
			first = ts
		} else if !ts.After(last) {
			return first, last, fmt.Errorf("entry %d: ts %s is not after %s", n, ts, last)
		}
		last = ts
	}
	return first, last, nil
}

// WriteSegment stores entries (raw oplog documents in ts order) as one
// segment of the given shard and timeline, without a link to the segment
// before it. Writers that know the previous segment use WriteSegmentAfter.
func (r *Repository) WriteSegment(ctx context.Context, shard, timeline string, entries []bson.Raw) (SegmentInfo, error) {
	return r.WriteSegmentAfter(ctx, shard, timeline, optime.Zero, entries)
}

// WriteSegmentAfter stores entries as one segment that follows, on its
// timeline, the segment whose last entry is prev (zero: the timeline's
// first), then the segment's index (SegmentIndex). The key carries the
// first and last ts and prev; the segment and its index are durable when
// WriteSegmentAfter returns. When the index cannot be written the error
// says so and the segment stays: writing the same entries again (a
// capture retrying its upload) rewrites both.
func (r *Repository) WriteSegmentAfter(ctx context.Context, shard, timeline string, prev optime.Timestamp, entries []bson.Raw) (SegmentInfo, error) {
	if err := checkShard(shard); err != nil {
		return SegmentInfo{}, fmt.Errorf("write segment: %w", err)
	}
	if err := checkTimeline(timeline); err != nil {
		return SegmentInfo{}, fmt.Errorf("write segment: %w", err)
	}
	first, last, err := entryRange(entries)
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("write segment: %v: %w", err, ErrInvalid)
	}
	payload, err := joinDocs(entries)
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("write segment: %w", err)
	}
	defer putBuf(payload)
	if !prev.Before(first) {
		return SegmentInfo{}, fmt.Errorf("write segment: previous %s is not before first %s: %w", prev, first, ErrInvalid)
	}
	info := SegmentInfo{Key: segmentKey(shard, timeline, first, last, prev), Shard: shard,
		Timeline: timeline, First: first, Last: last, Prev: prev}
	if info.Size, err = r.putObject(ctx, info.Key, KindSegment, payload); err != nil {
		return SegmentInfo{}, err
	}
	if err := r.writeIndex(ctx, info, entries); err != nil {
		return SegmentInfo{}, err
	}
	return info, nil
}

// decodeSegment parses a segment payload and checks its entries.
func decodeSegment(payload []byte) ([]bson.Raw, optime.Timestamp, optime.Timestamp, error) {
	entries, err := decodeDocs(payload)
	if err != nil {
		return nil, optime.Zero, optime.Zero, err
	}
	first, last, err := entryRange(entries)
	if err != nil {
		return nil, first, last, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return entries, first, last, nil
}

// ReadSegment loads a segment's entries and checks they match its key.
func (r *Repository) ReadSegment(ctx context.Context, s SegmentInfo) ([]bson.Raw, error) {
	payload, _, err := r.getObject(ctx, s.Key, KindSegment)
	if err != nil {
		return nil, err
	}
	entries, first, last, err := decodeSegment(payload)
	if err != nil {
		return nil, fmt.Errorf("decode object %s: %w", s.Key, err)
	}
	if first != s.First || last != s.Last {
		return nil, fmt.Errorf("decode object %s: %w: entries span %s..%s, key says %s..%s",
			s.Key, ErrCorrupt, first, last, s.First, s.Last)
	}
	return entries, nil
}

// ListSegments returns the segments of a shard in timeline order, applying
// the compaction rule: a segment wholly contained in another segment of the
// same timeline is hidden (a merge wrote the big one and has not yet deleted
// the small ones). The result has no holes and no duplicates.
func (r *Repository) ListSegments(ctx context.Context, shard string) ([]SegmentInfo, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("list segments: %w", err)
	}
	infos, err := r.listKeys(ctx, prefixOplog+shard+"/")
	if err != nil {
		return nil, err
	}
	all := make([]SegmentInfo, 0, len(infos))
	for _, i := range infos {
		s, err := parseSegmentKey(i.Key)
		if err != nil {
			return nil, fmt.Errorf("list segments: %w: %v", ErrCorrupt, err)
		}
		s.Size = i.Size
		all = append(all, s)
	}
	return visibleSegments(all), nil
}

// visibleSegments drops segments contained in another of the same timeline
// and sorts the rest by first ts.
func visibleSegments(all []SegmentInfo) []SegmentInfo {
	sorted := append([]SegmentInfo(nil), all...)
	// Bigger segments first among equal starts, so a container is always
	// seen before what it contains.
	sort.Slice(sorted, func(a, b int) bool {
		if c := optime.Compare(sorted[a].First, sorted[b].First); c != 0 {
			return c < 0
		}
		if c := optime.Compare(sorted[a].Last, sorted[b].Last); c != 0 {
			return c > 0
		}
		return sorted[a].Key < sorted[b].Key
	})
	maxLast := map[string]optime.Timestamp{}
	out := sorted[:0]
	for _, s := range sorted {
		if m, ok := maxLast[s.Timeline]; ok && !m.Before(s.Last) {
			continue
		}
		maxLast[s.Timeline] = s.Last
		out = append(out, s)
	}
	return out
}

// deleteSegments removes segments and their indexes, tolerating ones
// already gone.
func (r *Repository) deleteSegments(ctx context.Context, segs []SegmentInfo) error {
	for _, s := range segs {
		if err := r.DeleteSegment(ctx, s); err != nil {
			return err
		}
	}
	return nil
}
