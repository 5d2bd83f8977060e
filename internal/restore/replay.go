package restore

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
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

// replayOplog applies the plan's oplog range through replay.Applier.
func replayOplog(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options, idx *indexBuilder, rep *Report) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	guard := newLateGuard(ctx, client, p, o)
	flavor, err := source.ParseFlavor(p.Flavor)
	if err != nil {
		return fmt.Errorf("replay oplog: %w", err)
	}
	a := &replay.Applier{Client: client, Flavor: flavor, Map: guard.Map, Log: o.Log}
	var last optime.Timestamp
	prev := p.Snapshot.End // the last restore point before a segment, for errors
	for sr := range readAhead(ctx, r, p.Segments) {
		if sr.err != nil {
			return segmentError(p, sr.seg, prev, sr.err)
		}
		batch, newest, err := inRange(sr.entries, p.ReplayFrom, p.Target, last)
		if err != nil {
			return segmentError(p, sr.seg, prev, err)
		}
		if err := idx.beforeDDL(ctx, batch); err != nil {
			return err
		}
		st, err := a.Apply(ctx, batch)
		rep.Replay.Add(st)
		if guard.err != nil {
			return guard.err
		}
		if err != nil {
			return fmt.Errorf("replay oplog segment %s: %w", sr.seg.Key, err)
		}
		last = newest
		if sr.seg.Last.After(prev) {
			prev = sr.seg.Last
		}
		rep.Entries += int64(len(batch))
		o.Progress.addSegment(int64(len(sr.entries)), int64(len(batch)), sr.seg.Size)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := a.Pending(); n > 0 {
		o.Log.Info("transactions still open at the restore point are not applied", "count", n)
	}
	rep.LastApplied = last
	rep.late = guard.late
	rep.touched = guard.touched
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

// CountEntries reads the plan's segments and counts the entries a restore
// would replay (for --dry-run).
func CountEntries(ctx context.Context, r *repo.Repository, p Plan) (int64, error) {
	var n int64
	var last optime.Timestamp
	prev := p.Snapshot.End
	for _, s := range p.Segments {
		es, err := r.ReadSegment(ctx, s)
		if err != nil {
			return n, segmentError(p, s, prev, err)
		}
		kept, newest, err := inRange(es, p.ReplayFrom, p.Target, last)
		if err != nil {
			return n, segmentError(p, s, prev, err)
		}
		n += int64(len(kept))
		last, prev = newest, s.Last
	}
	return n, nil
}

// lateGuard extends the never-overwrite rule to collections the snapshot
// does not hold (created after it): the first time replay names such a
// target, it must be absent or empty, or dropped when --drop.
type lateGuard struct {
	ctx     context.Context
	client  *mongo.Client
	mapper  Mapper
	drop    bool
	log     *slog.Logger
	checked map[Namespace]bool
	late    []lateNS           // targets first named by the oplog, in order
	touched map[Namespace]bool // targets the replay wrote or may have written
	err     error
}

// lateNS is a collection the snapshot does not hold that replay wrote.
type lateNS struct{ source, target Namespace }

func newLateGuard(ctx context.Context, client *mongo.Client, p Plan, o Options) *lateGuard {
	g := &lateGuard{ctx: ctx, client: client, mapper: p.Mapper, drop: o.Drop, log: o.Log,
		checked: map[Namespace]bool{}, touched: map[Namespace]bool{}}
	for _, ns := range targetNamespaces(p) {
		g.checked[ns] = true // checkTargets saw them
	}
	return g
}

// Map is the replay mapping; once a late target is refused it skips
// everything, and replayOplog reports the refusal after the batch.
func (g *lateGuard) Map(db, coll string) (string, string, bool) {
	tdb, tcoll, ok := g.mapper.Map(db, coll)
	if !ok || g.err != nil {
		return "", "", false
	}
	t := Namespace{tdb, tcoll}
	g.touched[t] = true
	if g.checked[t] || strings.HasPrefix(tcoll, "$") {
		return tdb, tcoll, true
	}
	g.checked[t] = true
	g.late = append(g.late, lateNS{Namespace{db, coll}, t})
	_, nonEmpty, err := inspect(g.ctx, g.client, t)
	switch {
	case err != nil:
		g.err = err
	case nonEmpty && !g.drop:
		g.err = fmt.Errorf("%w: %s (created after the snapshot, by the oplog being replayed); restore under another name with --rename, or replace it with --drop",
			ErrTargetNotEmpty, t)
	case nonEmpty:
		g.log.Info("dropping target namespace (--drop)", "ns", t.String())
		if err := g.client.Database(tdb).Collection(tcoll).Drop(g.ctx); err != nil {
			g.err = fmt.Errorf("drop %s: %w", t, err)
		}
	}
	if g.err != nil {
		return "", "", false
	}
	return tdb, tcoll, true
}

// Resolve checks the --ns and --rename names the snapshot does not hold
// against the oplog the restore replays: a collection created after the
// snapshot is restorable; a name found nowhere is a mistake. It reads the
// plan's segments only when there is such a name.
func Resolve(ctx context.Context, r *repo.Repository, p *Plan) error {
	if len(p.unmatched) == 0 {
		return nil
	}
	seen := map[string]bool{}
	var last optime.Timestamp
	prev := p.Snapshot.End
	for _, s := range p.Segments {
		es, err := r.ReadSegment(ctx, s)
		if err != nil {
			return segmentError(*p, s, prev, err)
		}
		kept, newest, err := inRange(es, p.ReplayFrom, p.Target, last)
		if err != nil {
			return segmentError(*p, s, prev, err)
		}
		for _, e := range kept {
			addNamespaces(seen, e)
		}
		last, prev = newest, s.Last
	}
	var left []unmatched
	for _, u := range p.unmatched {
		if !seen[u.key] {
			left = append(left, u)
		}
	}
	p.unmatched = left
	if len(left) > 0 {
		return p.unmatchedError(p.snapshotDBs())
	}
	return nil
}

// addNamespaces records the database and db.coll an entry writes to
// (inside a transaction's applyOps too; a create command's collection).
func addNamespaces(seen map[string]bool, e bson.Raw) {
	ns, _ := e.Lookup("ns").StringValueOK()
	n := splitNS(ns)
	if o, ok := e.Lookup("o").DocumentOK(); ok && n.Coll == "$cmd" {
		els, _ := o.Elements()
		if len(els) > 0 && els[0].Key() == "applyOps" {
			vals, _ := els[0].Value().Array().Values()
			for _, v := range vals {
				if d, ok := v.DocumentOK(); ok {
					addNamespaces(seen, d)
				}
			}
			return
		}
		if len(els) > 0 && els[0].Key() == "create" {
			n.Coll, _ = els[0].Value().StringValueOK()
		}
	}
	if n.DB == "" || n.Coll == "" || n.Coll == "$cmd" {
		return
	}
	seen[n.DB] = true
	seen[n.String()] = true
}
