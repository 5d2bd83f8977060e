package restore

import (
	"context"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// segmentRead is one segment's entries, read ahead of the replay.
type segmentRead struct {
	seg     repo.SegmentInfo
	entries []bson.Raw
	err     error
}

// readAhead reads the plan's segments in order, one ahead of the consumer.
func readAhead(ctx context.Context, r *repo.Repository, segs []repo.SegmentInfo) <-chan segmentRead {
	out := make(chan segmentRead, 1)
	go func() {
		defer close(out)
		for _, s := range segs {
			es, err := r.ReadSegment(ctx, s)
			select {
			case out <- segmentRead{s, es, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	return out
}

// inRange keeps the entries with from <= ts <= to that come after last
// (two segments of a timeline may overlap), and returns the newest ts kept.
func inRange(entries []bson.Raw, from, to, last optime.Timestamp) ([]bson.Raw, optime.Timestamp, error) {
	out := entries[:0:0]
	for _, e := range entries {
		ts, err := optime.OfEntry(e)
		if err != nil {
			return nil, last, err
		}
		if ts.Before(from) || ts.After(to) || !ts.After(last) {
			continue
		}
		out = append(out, e)
		last = ts
	}
	return out, last, nil
}

// replayOplog applies the plan's oplog range with o.Parallel appliers at
// once (parallelApplier: partitioned by namespace and _id, each document's
// entries in order, commands and transactions alone). Every namespace it
// writes was listed by Resolve and checked before the first write (the
// snapshot's collections and views, and Plan.Late).
func replayOplog(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options, idx *indexBuilder, rep *Report) error {
	return replayInto(ctx, r, func(a *replay.Applier) { a.Client = client }, p, o, idx, rep)
}

// replayInto is replayOplog with the appliers' target set by into: the
// client, or (the cluster vector tests) a replay.Memory, which is not
// safe for concurrent use, so o.Parallel must then be 1.
func replayInto(ctx context.Context, r *repo.Repository, into func(*replay.Applier), p Plan, o Options, idx *indexBuilder, rep *Report) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Each applier records the target namespaces it wrote on its own (the
	// lanes run at once); they are merged at the end.
	var touched []map[Namespace]bool
	a := newParallelApplier(p, o.Parallel, func(int) *replay.Applier {
		mine := map[Namespace]bool{}
		touched = append(touched, mine)
		mapNS := func(db, coll string) (string, string, bool) {
			tdb, tcoll, ok := p.Mapper.Map(db, coll)
			if ok {
				mine[Namespace{tdb, tcoll}] = true
			}
			return tdb, tcoll, ok
		}
		// A cluster's chunk migrations copy documents between shards: the
		// entries that say so (fromMigrate) change no logical data.
		a := &replay.Applier{Flavor: p.Flavor, Map: mapNS, Log: o.Log,
			BypassEmptyTsReplacement: o.Server.BypassEmptyTsReplacement, SkipFromMigrate: len(p.Parts) > 0}
		into(a)
		return a
	})
	defer func() {
		rep.touched = map[Namespace]bool{}
		for _, m := range touched {
			for ns := range m {
				rep.touched[ns] = true
			}
		}
	}()
	var last optime.Timestamp
	seg := func(s repo.SegmentInfo, read, kept int) {
		o.Progress.addSegment(int64(read), int64(kept), s.Size)
	}
	err := p.readOplog(ctx, r, seg, func(batch []bson.Raw) error {
		// The look-ahead's commits come last, logged after Target: the
		// last restore point applied stays at or before it.
		if len(batch) > 0 {
			if ts, _ := optime.OfEntry(batch[len(batch)-1]); !ts.After(p.Target) {
				last = ts
			}
		}
		batch = p.restrict(batch)
		if err := idx.beforeDDL(ctx, batch); err != nil {
			return err
		}
		st, err := a.Apply(ctx, batch)
		rep.Replay.Add(st)
		if err != nil {
			return fmt.Errorf("replay the oplog up to %s: %w", describeTS(last), err)
		}
		rep.Entries += int64(len(batch))
		return nil
	})
	if err != nil {
		return err
	}
	if n := a.Pending(); n > 0 {
		o.Log.Info("transactions not committed at the restore point are not applied (open, aborted, or committed after it)", "count", n)
	}
	rep.LastApplied = last
	return nil
}

// segmentError names the segment and the last restore point before it.
func segmentError(p Plan, seg repo.SegmentInfo, prev optime.Timestamp, err error) error {
	if !objectBroken(err) {
		return fmt.Errorf("read oplog segment %s: %w", seg.Key, err)
	}
	if !seg.First.After(p.Snapshot.End) {
		return fmt.Errorf("read oplog segment %s: %w; it lies inside snapshot %s's copy, so this snapshot cannot be restored; %s",
			seg.Key, err, p.Snapshot.ID, otherWindows(p))
	}
	return fmt.Errorf("read oplog segment %s: %w; the last restore point before it is %s (--to %s); run `rewind list` to see the windows",
		seg.Key, err, prev.Time().Format("2006-01-02T15:04:05Z"), prev)
}
