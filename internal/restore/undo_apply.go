package restore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// UndoSample is how many _ids an undo's report lists per namespace: of
// the documents it changes (would change, in a dry run), and of the
// conflicts.
const UndoSample = 10

// UndoCounts count the documents an undo looked at. Every document the
// range changed (and --filter selected) is in exactly one of Restored,
// Reinserted, Deleted, Unchanged, ConflictsLeft and ConflictsForced.
type UndoCounts struct {
	Changed         int64 // documents the range changed, selected by --filter
	Restored        int64 // replaced by their version at --from (the range updated or replaced them)
	Reinserted      int64 // inserted as they were at --from (the range deleted them)
	Deleted         int64 // deleted (the range inserted them)
	Unchanged       int64 // nothing to do: the range left them as they were, or the target holds their version at --from already
	ConflictsLeft   int64 // changed since --to (the target's version is not the one at --to): left alone
	ConflictsForced int64 // changed since --to, put back anyway (--force)
	NotSelected     int64 // changed by the range, but --filter does not select them
}

func (c *UndoCounts) add(o UndoCounts) {
	c.Changed += o.Changed
	c.Restored += o.Restored
	c.Reinserted += o.Reinserted
	c.Deleted += o.Deleted
	c.Unchanged += o.Unchanged
	c.ConflictsLeft += o.ConflictsLeft
	c.ConflictsForced += o.ConflictsForced
	c.NotSelected += o.NotSelected
}

// Written is the number of documents the undo writes (would write).
func (c UndoCounts) Written() int64 {
	return c.Restored + c.Reinserted + c.Deleted + c.ConflictsForced
}

// UndoNamespace is what an undo did (would do) in one namespace.
type UndoNamespace struct {
	Namespace Namespace
	UndoCounts
	// Recreated: the range dropped the collection and the target lacks it,
	// so the undo creates it as it was at --from, with its indexes.
	Recreated bool
	Sample    []bson.RawValue // the first UndoSample _ids it writes (would write)
	Conflicts []bson.RawValue // the first UndoSample conflicts
}

// UndoReport is what an undo did, or with DryRun would do.
type UndoReport struct {
	From, To   optime.Timestamp // the range (From, To]
	Entries    int64            // oplog entries in the range (all namespaces)
	DryRun     bool
	Force      bool
	Filter     bson.Raw // the --filter, nil for none
	Namespaces []UndoNamespace
	UndoCounts          // over every namespace
	Notes      []string // what the range did that an undo leaves as it is
	Phases     []Phase
	Duration   time.Duration
}

// Execute carries the undo out on the target, or with DryRun says what it
// would do. It stages on the target the versions at --from and at --to of
// the documents the range changed (two restores, restricted to those
// documents), reads the target's current versions and decides each
// document (decide), all before its first write; a dry run stops there.
// It then writes in batches, reading each batch's current versions again
// first, so a document written meanwhile becomes a conflict. The staging
// is dropped however it ends. An undo that stops after its first write
// says so; running it again finishes it.
func (u *PreparedUndo) Execute(ctx context.Context, t *Target, o Options) (UndoReport, error) {
	ctx, done := lockScope(ctx, u.held)
	defer done()
	o.Parallel, o.Server = u.Request.Parallel, &t.Server
	if err := o.defaults(ctx, t.Client); err != nil {
		return UndoReport{}, err
	}
	rep, wrote, err := u.execute(ctx, t.Client, o)
	return rep, undoStateError(rep, wrote, repo.LostError(ctx, err))
}

func (u *PreparedUndo) execute(ctx context.Context, client *mongo.Client, o Options) (rep UndoReport, wrote bool, err error) {
	start := time.Now()
	rep = UndoReport{From: u.From.Target, To: u.To.Target, Entries: u.changes.entries, DryRun: u.Request.DryRun,
		Force: u.Request.Force, Filter: u.Request.filter(), Notes: u.changes.noteList()}
	defer func() { rep.Duration = time.Since(start) }()
	if u.changes.empty() {
		return rep, false, nil
	}
	o.Progress.start(u.From)
	clock := &phaseClock{progress: o.Progress, last: start}
	clock.enter("check")
	if err := u.checkTarget(ctx, client); err != nil {
		return rep, false, err
	}
	from, to := newStaging(client, o.Log), newStaging(client, o.Log)
	defer from.drop(ctx)
	defer to.drop(ctx)
	from.dropLeftovers(ctx, start)
	for _, s := range []struct {
		phase string
		st    *staging
		plan  Plan
	}{{"stage --from", from, u.From}, {"stage --to", to, u.To}} {
		clock.enter(s.phase)
		if err := u.stage(ctx, client, s.st, s.plan, o); err != nil {
			return rep, false, err
		}
	}
	clock.enter("compare")
	work, err := u.compare(ctx, client, from, to, &rep)
	if err != nil {
		return rep, false, err
	}
	if !rep.DryRun {
		clock.enter("apply")
		if err := u.apply(ctx, client, from, to, work, o, &rep, &wrote); err != nil {
			return rep, wrote, err
		}
	}
	clock.enter("cleanup")
	from.drop(ctx)
	to.drop(ctx)
	clock.enter("done")
	rep.Phases = clock.done
	return rep, wrote, nil
}

// checkTarget refuses, before anything is staged, target collections the
// undo cannot write into, as a merge's check does.
func (u *PreparedUndo) checkTarget(ctx context.Context, client *mongo.Client) error {
	p := u.From
	p.Merge = MergeOverwrite
	findings, err := Check(ctx, client, p)
	if err != nil {
		return err
	}
	if len(findings) > 0 {
		return &TargetError{Findings: findings, Merge: MergeOverwrite, Undo: true}
	}
	return nil
}

// stage restores one end of the range, restricted to the changed
// documents, into a staging. The progress shows the restore's own phases
// (load, replay...); the undo's report times the whole.
func (u *PreparedUndo) stage(ctx context.Context, client *mongo.Client, st *staging, p Plan, o Options) error {
	sp, err := st.plan(p)
	if err != nil {
		return err
	}
	o.Progress.start(sp)
	clock := &phaseClock{progress: o.Progress, last: time.Now()}
	if _, _, err := executeDirect(ctx, u.repo, client, &sp, o, clock); err != nil {
		return fmt.Errorf("stage the documents as of %s: %w", p.Target, err)
	}
	return nil
}

// nsWork is what an undo writes in one namespace: the selected _ids, and
// whether it re-creates the collection.
type nsWork struct {
	ns       Namespace
	ids      []bson.RawValue
	recreate *stagedCollection
}

// compare decides every selected document and counts the verdicts: the
// dry run's answer, and the apply's plan.
func (u *PreparedUndo) compare(ctx context.Context, client *mongo.Client, from, to *staging, rep *UndoReport) ([]nsWork, error) {
	atFrom, err := from.collections(ctx)
	if err != nil {
		return nil, err
	}
	var work []nsWork
	for _, ns := range u.changes.order {
		w := nsWork{ns: ns}
		ids, err := u.changedIDs(ctx, from, ns)
		if err != nil {
			return nil, err
		}
		nr := UndoNamespace{Namespace: ns}
		if w.ids, err = u.selectIDs(ctx, from, to, ns, ids); err != nil {
			return nil, err
		}
		nr.NotSelected = int64(len(ids) - len(w.ids))
		if w.recreate, err = u.recreation(ctx, client, ns, atFrom); err != nil {
			return nil, err
		}
		nr.Recreated = w.recreate != nil
		if err := u.eachBatch(ctx, client, from, to, w, func(v verdict, id bson.RawValue, _, _ bson.Raw) {
			nr.tally(v, id, u.Request.Force)
		}, nil); err != nil {
			return nil, err
		}
		rep.add(nr.UndoCounts)
		rep.Namespaces = append(rep.Namespaces, nr)
		work = append(work, w)
	}
	return work, nil
}

// changedIDs are the _ids the range changed in ns: those its entries
// wrote and, for a collection it dropped or emptied, every one it held at
// --from (the staging at --from holds them all).
func (u *PreparedUndo) changedIDs(ctx context.Context, from *staging, ns Namespace) ([]bson.RawValue, error) {
	set := u.changes.ids[ns]
	if u.changes.whole[ns] {
		cur, err := from.coll(ns).Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			return nil, fmt.Errorf("read the documents of %s as of %s: %w", ns, u.From.Target, err)
		}
		defer cur.Close(ctx)
		for cur.Next(ctx) {
			set.add(cur.Current.Lookup("_id"))
		}
		if err := cur.Err(); err != nil {
			return nil, fmt.Errorf("read the documents of %s as of %s: %w", ns, u.From.Target, err)
		}
	}
	return set.ids, nil
}

// selectIDs keeps the ids --filter selects: those whose version at --from
// matches it, and of those absent at --from (the range inserted them),
// those whose version at --to matches it. The server evaluates the filter
// on the stagings.
func (u *PreparedUndo) selectIDs(ctx context.Context, from, to *staging, ns Namespace, ids []bson.RawValue) ([]bson.RawValue, error) {
	filter := u.Request.filter()
	if filter == nil {
		return ids, nil
	}
	present, err := readByID(ctx, from.coll(ns), ids, true, nil)
	if err != nil {
		return nil, err
	}
	var absent []bson.RawValue
	for _, id := range ids {
		if _, ok := present[idKey(id)]; !ok {
			absent = append(absent, id)
		}
	}
	matchFrom, err := readByID(ctx, from.coll(ns), ids, true, filter)
	if err != nil {
		return nil, filterError(filter, err)
	}
	matchTo, err := readByID(ctx, to.coll(ns), absent, true, filter)
	if err != nil {
		return nil, filterError(filter, err)
	}
	var out []bson.RawValue
	for _, id := range ids {
		_, f := matchFrom[idKey(id)]
		_, t := matchTo[idKey(id)]
		if f || t {
			out = append(out, id)
		}
	}
	return out, nil
}

func (r UndoRequest) filter() bson.Raw {
	if r.Filter == "" {
		return nil
	}
	f, _ := ParseFilter("filter", r.Filter) // checked by Validate
	return f
}

// filterError names a query the server refused as bad input.
func filterError(filter bson.Raw, err error) error {
	var se mongo.ServerError
	if errors.As(err, &se) {
		return invalid("filter", "%s: the target's server refuses the query: %v", show(bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: filter}), err)
	}
	return err
}

// recreation is the collection to re-create as it was at --from: the range
// dropped it (or its database), it existed at --from, and the target lacks it.
func (u *PreparedUndo) recreation(ctx context.Context, client *mongo.Client, ns Namespace, atFrom []stagedCollection) (*stagedCollection, error) {
	if !u.changes.whole[ns] {
		return nil, nil
	}
	for i, c := range atFrom {
		if c.Source != ns {
			continue
		}
		lister := collectionLister{client: client, byDB: map[string]map[string]bson.Raw{}}
		spec, err := lister.spec(ctx, ns)
		if err != nil || spec != nil {
			return nil, err
		}
		return &atFrom[i], nil
	}
	return nil, nil
}

// verdict is what an undo does with one document.
type verdict int

const (
	unchanged  verdict = iota // nothing to do
	restored                  // replace the target's version (the one at --to) by the one at --from
	reinserted                // insert the version at --from (the target lacks it, as at --to)
	deleted                   // delete the target's version (the one at --to; none at --from)
	conflict                  // the target's version is not the one at --to: changed since
)

// decide is the undo of one document from its versions at --from (f), at
// --to (t) and in the target now (c), raw BSON compared byte for byte, nil
// when absent. A document the range left as it was (f = t), or that the
// target holds as it was at --from already (c = f: an undo run again), is
// unchanged; one the target holds as at --to is put back; any other was
// changed since --to: a conflict.
func decide(f, t, c bson.Raw) verdict {
	switch {
	case bytes.Equal(f, t), bytes.Equal(c, f):
		return unchanged
	case !bytes.Equal(c, t):
		return conflict
	case f == nil:
		return deleted
	case c == nil:
		return reinserted
	}
	return restored
}

// tally counts one verdict in a namespace's report.
func (n *UndoNamespace) tally(v verdict, id bson.RawValue, force bool) {
	n.Changed++
	switch v {
	case unchanged:
		n.Unchanged++
		return
	case restored:
		n.Restored++
	case reinserted:
		n.Reinserted++
	case deleted:
		n.Deleted++
	case conflict:
		if len(n.Conflicts) < UndoSample {
			n.Conflicts = append(n.Conflicts, id)
		}
		if !force {
			n.ConflictsLeft++
			return
		}
		n.ConflictsForced++
	}
	if len(n.Sample) < UndoSample {
		n.Sample = append(n.Sample, id)
	}
}

// eachBatch reads the three versions of the work's documents, idChunk at
// a time, passes each document's verdict to fn with its version at --from
// and the target's, and calls done (when set) after each batch.
func (u *PreparedUndo) eachBatch(ctx context.Context, client *mongo.Client, from, to *staging, w nsWork,
	fn func(v verdict, id bson.RawValue, f, c bson.Raw), done func() error) error {
	target := client.Database(w.ns.DB).Collection(w.ns.Coll)
	for ids := w.ids; len(ids) > 0; {
		n := min(idChunk, len(ids))
		batch := ids[:n]
		ids = ids[n:]
		var vs [3]map[string]bson.Raw
		for i, coll := range []*mongo.Collection{from.coll(w.ns), to.coll(w.ns), target} {
			var err error
			if vs[i], err = readByID(ctx, coll, batch, false, nil); err != nil {
				return err
			}
		}
		for _, id := range batch {
			k := idKey(id)
			f, c := vs[0][k], vs[2][k]
			fn(decide(f, vs[1][k], c), id, f, c)
		}
		if done != nil {
			if err := done(); err != nil {
				return err
			}
		}
	}
	return nil
}

// apply writes the undo, namespace by namespace, re-creating dropped
// collections first. Each batch's verdicts are decided again on versions
// read just before its write, and counted anew.
func (u *PreparedUndo) apply(ctx context.Context, client *mongo.Client, from, to *staging, work []nsWork, o Options, rep *UndoReport, wrote *bool) error {
	rep.UndoCounts = UndoCounts{}
	for i, w := range work {
		nr := &rep.Namespaces[i]
		notSelected, recreated := nr.NotSelected, nr.Recreated
		*nr = UndoNamespace{Namespace: w.ns, Recreated: recreated}
		nr.NotSelected = notSelected
		if w.recreate != nil {
			*wrote = true
			if err := ensureTarget(ctx, client, w.ns, *w.recreate, MergeNone); err != nil {
				return err
			}
		}
		var put []bson.Raw
		var del []bson.RawValue
		written := func() error { // after each batch of idChunk documents
			if len(put)+len(del) > 0 {
				*wrote = true
			}
			err := putBack(ctx, client, o.Server, o.Log, w.ns, put, del)
			put, del = put[:0], del[:0]
			return err
		}
		err := u.eachBatch(ctx, client, from, to, w, func(v verdict, id bson.RawValue, f, c bson.Raw) {
			nr.tally(v, id, u.Request.Force)
			switch {
			case v == unchanged || v == conflict && !u.Request.Force:
			case f != nil:
				put = append(put, f)
			case c != nil:
				del = append(del, id)
			}
		}, written)
		rep.add(nr.UndoCounts)
		if err != nil {
			return err
		}
	}
	return nil
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
	return fmt.Errorf("%w; the undo had begun writing: %d documents put back in %s; run the same undo again to finish it (the documents it put back already are recognized and left as they are)",
		err, rep.Written(), strings.Join(names, ", "))
}
