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
//
// Last, fn gets the commit entries, logged after Target, of the prepared
// transactions that are open at Target yet committed at or before it
// (txnWatch): the state at Target holds them.
func (p *Plan) readOplog(ctx context.Context, r *repo.Repository, seg func(s repo.SegmentInfo, read, kept int), fn func([]bson.Raw) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := txnWatch{match: p.Mapper.Match}
	var cs []*partCursor
	var err error
	if len(p.Parts) == 0 {
		cs = []*partCursor{newPartCursor(ctx, r, p)}
		err = readOne(cs[0], &w, seg, fn)
	} else {
		for i := range p.Parts {
			cs = append(cs, newPartCursor(ctx, r, &p.Parts[i]))
		}
		err = readMerged(cs, &w, seg, fn)
	}
	if err == nil {
		err = ctx.Err()
	}
	if err != nil {
		return err
	}
	commits, err := w.lookAhead(ctx, r, cs)
	if err != nil || len(commits) == 0 {
		return err
	}
	return fn(commits)
}

// readOne reads one shard's range, a segment's entries at a time.
func readOne(c *partCursor, w *txnWatch, seg func(s repo.SegmentInfo, read, kept int), fn func([]bson.Raw) error) error {
	for {
		if err := c.next(seg); err != nil {
			return err
		}
		if c.done {
			return nil
		}
		for _, e := range c.buf {
			w.see(0, e)
		}
		if err := fn(c.buf); err != nil {
			return err
		}
		c.buf, c.ts = nil, nil
	}
}

// readMerged reads every shard's range merged by ts.
func readMerged(cs []*partCursor, w *txnWatch, seg func(s repo.SegmentInfo, read, kept int), fn func([]bson.Raw) error) error {
	for {
		for _, c := range cs {
			for len(c.buf) == 0 && !c.done {
				if err := c.next(seg); err != nil {
					return err
				}
			}
		}
		batch := mergeHeads(cs, w.see)
		if len(batch) == 0 {
			return nil
		}
		if err := fn(batch); err != nil {
			return err
		}
	}
}

// mergeHeads takes entries in (ts, shard) order from the cursors' buffers
// until one of them runs dry (it must be refilled before the merge may go
// on) or the batch is full, and shows each to see with its cursor's index.
func mergeHeads(cs []*partCursor, see func(part int, e bson.Raw)) []bson.Raw {
	var batch []bson.Raw
	for len(batch) < mergeBatch {
		h := -1
		for i, c := range cs {
			if len(c.buf) > 0 && (h < 0 || c.ts[0].Before(cs[h].ts[0])) {
				h = i
			}
		}
		if h < 0 {
			break
		}
		head := cs[h]
		see(h, head.buf[0])
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
