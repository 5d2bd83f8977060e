package oplog

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Batch is a run of consecutive oplog entries on one timeline, on its way to
// becoming one segment of the repository.
type Batch struct {
	// Timeline names the unbroken run of entries the batch belongs to.
	Timeline string
	First    optime.Timestamp
	Last     optime.Timestamp
	// Prev is the last entry of the batch before this one on the timeline
	// (zero for a timeline's first batch): segments are chained by it.
	Prev    optime.Timestamp
	Entries []bson.Raw
	// Bytes is the total size of Entries.
	Bytes int
}

// Append adds one entry, whose timestamp must follow the batch's last.
func (b *Batch) Append(entry bson.Raw, ts optime.Timestamp) {
	if len(b.Entries) == 0 {
		b.First = ts
	}
	b.Last = ts
	b.Entries = append(b.Entries, entry)
	b.Bytes += len(entry)
}

// Sink makes batches durable in the repository, one segment each, in order.
type Sink interface {
	WriteSegment(ctx context.Context, b Batch) error
}

// newBatchFromEntries rebuilds a batch from stored entries (the spool).
func newBatchFromEntries(timeline string, prev optime.Timestamp, entries []bson.Raw) (Batch, error) {
	b := Batch{Timeline: timeline, Prev: prev}
	for _, e := range entries {
		ts, err := optime.OfEntry(e)
		if err != nil {
			return b, err
		}
		if len(b.Entries) > 0 && !ts.After(b.Last) {
			return b, fmt.Errorf("entries out of order: %s after %s", ts, b.Last)
		}
		b.Append(e, ts)
	}
	return b, nil
}
