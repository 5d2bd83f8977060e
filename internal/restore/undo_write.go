package restore

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"golang.org/x/sync/errgroup"
)

// apply writes the undo, namespace by namespace: it re-creates a dropped
// collection first, reads the target's versions again and decides every
// document anew (one written since the comparison is now a conflict),
// then writes the versions at --from, streamed from the staging, and the
// deletes. The report's counts are the apply's.
func (u *PreparedUndo) apply(ctx context.Context, client *mongo.Client, from *staging, work []*nsWork, o Options, rep *UndoReport, wrote *bool) error {
	var writes int64
	for _, n := range rep.Namespaces {
		writes += n.Written()
	}
	o.Progress.startWrites(writes)
	rep.UndoCounts = UndoCounts{}
	for i, w := range work {
		nr := &rep.Namespaces[i]
		*nr = UndoNamespace{Namespace: w.ns, Recreated: nr.Recreated, UndoCounts: UndoCounts{NotSelected: nr.NotSelected}}
		err := u.applyNS(ctx, client, from, w, o, nr, wrote)
		rep.add(nr.UndoCounts)
		if err != nil {
			return err
		}
	}
	return nil
}

func (u *PreparedUndo) applyNS(ctx context.Context, client *mongo.Client, from *staging, w *nsWork, o Options, nr *UndoNamespace, wrote *bool) error {
	if w.recreate != nil {
		*wrote = true
		if err := ensureTarget(ctx, client, w.ns, *w.recreate, MergeNone); err != nil {
			return err
		}
	}
	target := client.Database(w.ns.DB).Collection(w.ns.Coll)
	now := map[string][]byte{}
	if err := eachByID(ctx, target, w.ids, func(k string, doc bson.Raw) error {
		now[k] = digest(doc)
		return nil
	}); err != nil {
		return err
	}
	todo := map[string]verdict{}
	var puts []bson.RawValue
	var dels []bson.RawValue
	for _, id := range w.ids {
		k := idKey(id)
		v := w.vs[k]
		verdict := decide(v.f, v.t, now[k])
		nr.tally(verdict, id, u.Request.Force)
		switch {
		case verdict == unchanged || verdict == conflict && !u.Request.Force:
		case v.f != nil:
			todo[k] = verdict
			puts = append(puts, id)
		case now[k] != nil:
			dels = append(dels, id)
		}
	}
	uw := &undoWriter{client: client, ns: w.ns, server: o.Server, o: o, nr: nr, wrote: wrote}
	if err := uw.stream(ctx, from.coll(w.ns), puts, todo); err != nil {
		return err
	}
	for len(dels) > 0 {
		batch := dels[:min(idChunk, len(dels))]
		dels = dels[len(batch):]
		*wrote = true
		if err := putBack(ctx, client, o.Server, o.Log, w.ns, nil, batch); err != nil {
			return err
		}
		o.Progress.addWritten(int64(len(batch)))
	}
	return nil
}

// undoWriter writes versions at --from back in batches: a document the
// target lacked when it was read again is inserted (never overwriting one
// written since: that one is left alone, a conflict), any other replaced
// by _id.
type undoWriter struct {
	client *mongo.Client
	ns     Namespace
	server *Server
	o      Options
	nr     *UndoNamespace
	wrote  *bool
}

// undoBatch is up to idChunk versions at --from, split by how they are
// written.
type undoBatch struct{ insert, other []bson.Raw }

// stream reads the versions at --from of ids from the staging and writes
// them, the read of the next batch overlapping the write of the last (on
// a server that reads slowly the two take about as long).
func (w *undoWriter) stream(ctx context.Context, staged *mongo.Collection, ids []bson.RawValue, todo map[string]verdict) error {
	batches := make(chan undoBatch, 1)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		for b := range batches {
			if err := w.write(gctx, b); err != nil {
				return err
			}
		}
		return nil
	})
	g.Go(func() error {
		defer close(batches)
		var b undoBatch
		send := func() error {
			select {
			case batches <- b:
				b = undoBatch{}
				return nil
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		err := eachByID(gctx, staged, ids, func(k string, doc bson.Raw) error {
			doc = append(bson.Raw(nil), doc...)
			if todo[k] == reinserted {
				b.insert = append(b.insert, doc)
			} else {
				b.other = append(b.other, doc)
			}
			if len(b.insert)+len(b.other) < idChunk {
				return nil
			}
			return send()
		})
		if err == nil && len(b.insert)+len(b.other) > 0 {
			err = send()
		}
		return err
	})
	return g.Wait()
}

// write writes one batch; only the writing goroutine calls it, so the
// namespace's counts and wrote are set from one goroutine at a time.
func (w *undoWriter) write(ctx context.Context, b undoBatch) error {
	*w.wrote = true
	if len(b.insert) > 0 {
		mw := &mergeWriter{client: w.client, ns: w.ns, merge: MergeMissing, server: w.server, log: w.o.Log}
		if err := mw.insertMissing(ctx, b.insert); err != nil {
			return err
		}
		// Inserted by someone else since it was read: a conflict, left alone.
		w.nr.Reinserted -= mw.LeftAlone
		w.nr.ConflictsLeft += mw.LeftAlone
	}
	err := putBack(ctx, w.client, w.server, w.o.Log, w.ns, b.other, nil)
	w.o.Progress.addWritten(int64(len(b.insert) + len(b.other)))
	return err
}

// undoStateError says what a failed undo left in the target: nothing
// before its first write, else how far it got and what to do.
func undoStateError(rep UndoReport, wrote bool, err error) error {
	switch {
	case err == nil || errors.Is(err, ErrTargetInTheWay):
		return err
	case !wrote:
		return fmt.Errorf("%w; nothing was written to the target", err)
	}
	var names []string
	for _, n := range rep.Namespaces {
		if n.Written() > 0 || n.Recreated {
			names = append(names, n.Namespace.String())
		}
	}
	sort.Strings(names)
	return fmt.Errorf("%w; the undo had begun writing in %s; run the same undo again to finish it (the documents it put back already are recognized and left as they are)",
		err, strings.Join(names, ", "))
}
