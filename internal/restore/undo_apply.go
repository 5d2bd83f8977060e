package restore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

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
// It then writes namespace by namespace, reading the target's versions
// again first, so a document written since the comparison becomes a
// conflict. The staging is dropped however it ends. An undo that stops
// after its first write says so; running it again finishes it. Unless a
// dry run, it is recorded in the repository's audit entries, as a restore.
func (u *PreparedUndo) Execute(ctx context.Context, t *Target, o Options) (UndoReport, error) {
	ctx, done := lockScope(ctx, u.held)
	defer done()
	o.Parallel, o.Server = u.Request.Parallel, &t.Server
	if err := o.defaults(ctx, t.Client); err != nil {
		return UndoReport{}, err
	}
	run := func() (UndoReport, error) {
		rep, wrote, err := u.execute(ctx, t.Client, o)
		return rep, undoStateError(rep, wrote, repo.LostError(ctx, err))
	}
	if u.Request.DryRun { // writes only its staging: not audited
		return run()
	}
	e := repo.AuditEntry{Action: repo.AuditUndo, Target: u.Request.Target, Namespaces: u.Request.Include,
		To: fmt.Sprintf("after %s (%s) up to %s (%s)", u.Request.From, u.From.Target, u.Request.To, u.To.Target)}
	rep, err := repo.Audited(ctx, u.repo, o.Log, e, run, undoDetail)
	if errors.Is(err, repo.ErrNotAudited) {
		err = undoStateError(rep, false, repo.LostError(ctx, err))
	}
	return rep, err
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
		if err := u.apply(ctx, client, from, work, o, &rep, &wrote); err != nil {
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
	if err == nil {
		err = CheckFilter(ctx, client, u.Request.filter())
	}
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
