package repo

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// ReadEntries reads segments (in listing order) and calls fn for every
// entry after the timestamp after, each exactly once: entries that
// partially overlapping segments hold twice are skipped. Segments that end
// at or before after are not fetched. An error from fn stops the read and
// is returned. One segment is in memory at a time.
func (r *Repository) ReadEntries(ctx context.Context, segs []SegmentInfo, after optime.Timestamp, fn func(optime.Timestamp, bson.Raw) error) error {
	last := after
	for _, s := range segs {
		if !s.Last.After(last) {
			continue
		}
		entries, err := r.ReadSegment(ctx, s)
		if err != nil {
			return err
		}
		for _, e := range entries {
			ts, err := optime.OfEntry(e)
			if err != nil {
				return fmt.Errorf("read entries: %s: %w: %v", s.Key, ErrCorrupt, err)
			}
			if !ts.After(last) {
				continue
			}
			if err := fn(ts, e); err != nil {
				return err
			}
			last = ts
		}
	}
	return nil
}
