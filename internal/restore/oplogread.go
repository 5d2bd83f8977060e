package restore

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// mergeBatch bounds the entries of one batch merged from a cluster's shards.
const mergeBatch = 1000

// readOplog calls fn with the plan's oplog range (ReplayFrom <= ts <=
// Target; ReplayFrom < ts with StartInData), in timestamp order, a batch
// at a time, and seg after each segment is read (its entries, and those in the range). A replica set's
// range is its segments in order; a cluster's (Parts) is every shard's
// range merged by ts, so that a command logged on every shard (a drop, a
// create) is replayed once at its place among the others' writes. A
// segment that cannot be read is named with the last restore point
// before it (segmentError).
func (p *Plan) readOplog(ctx context.Context, r *repo.Repository, seg func(s repo.SegmentInfo, read, kept int), fn func([]bson.Raw) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if len(p.Parts) == 0 {
		c := newPartCursor(ctx, r, p)
		for {
			if err := c.next(seg); err != nil {
				return err
			}
			if c.done {
				return ctx.Err()
			}
			if err := fn(c.buf); err != nil {
				return err
			}
			c.buf, c.ts = nil, nil
		}
	}
	cs := make([]*partCursor, len(p.Parts))
	for i := range p.Parts {
		cs[i] = newPartCursor(ctx, r, &p.Parts[i])
	}
	for {
		for _, c := range cs {
			for len(c.buf) == 0 && !c.done {
				if err := c.next(seg); err != nil {
					return err
				}
			}
		}
		batch := mergeHeads(cs)
		if len(batch) == 0 {
			return ctx.Err()
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
}

// mergeHeads takes entries in (ts, shard) order from the cursors' buffers
// until one of them runs dry (it must be refilled before the merge may go
// on) or the batch is full.
func mergeHeads(cs []*partCursor) []bson.Raw {
	var batch []bson.Raw
	for len(batch) < mergeBatch {
		var head *partCursor
		for _, c := range cs {
			if len(c.buf) > 0 && (head == nil || c.ts[0].Before(head.ts[0])) {
				head = c
			}
		}
		if head == nil {
			break
		}
		batch = append(batch, head.buf[0])
		head.buf, head.ts = head.buf[1:], head.ts[1:]
		if len(head.buf) == 0 && !head.done {
			break
		}
	}
	return batch
}

// partCursor reads one shard's range a segment at a time.
type partCursor struct {
	plan       *Plan
	ch         <-chan segmentRead
	buf        []bson.Raw
	ts         []optime.Timestamp
	last, prev optime.Timestamp
	done       bool
}

func newPartCursor(ctx context.Context, r *repo.Repository, p *Plan) *partCursor {
	c := &partCursor{plan: p, ch: readAhead(ctx, r, p.Segments), prev: p.Snapshot.End}
	if p.StartInData {
		c.last = p.ReplayFrom // inRange keeps only entries after last
	}
	return c
}

// next reads the next segment's entries in the range into buf (none when
// it holds none); done when the segments are all read. A cancelled read
// ends the cursor: the caller reports ctx's error.
func (c *partCursor) next(seg func(s repo.SegmentInfo, read, kept int)) error {
	sr, ok := <-c.ch
	if !ok {
		c.done = true
		return nil
	}
	if sr.err != nil {
		return segmentError(*c.plan, sr.seg, c.prev, sr.err)
	}
	kept, newest, err := inRange(sr.entries, c.plan.ReplayFrom, c.plan.Target, c.last)
	if err != nil {
		return segmentError(*c.plan, sr.seg, c.prev, err)
	}
	c.ts = make([]optime.Timestamp, len(kept))
	for i, e := range kept {
		c.ts[i], _ = optime.OfEntry(e) // inRange read every ts already
	}
	c.buf, c.last = kept, newest
	if sr.seg.Last.After(c.prev) {
		c.prev = sr.seg.Last
	}
	if seg != nil {
		seg(sr.seg, len(sr.entries), len(kept))
	}
	return nil
}
