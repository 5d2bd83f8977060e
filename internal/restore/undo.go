package restore

import (
	"context"
	"fmt"
	"strings"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// UndoRequest is an undo as a user asks for it: the flags of `rewind undo`
// (and the body the API will take: from, to, ns, filter, target, force,
// dry_run, parallel, connect_timeout). Every document that an oplog entry
// in (From, To] changed, in the namespaces Include selects, is put back in
// the target as it was at From, unless the target's version is no longer
// the one at To (a conflict: changed since; left alone unless Force).
type UndoRequest struct {
	From    When     // --from: the state to put back; exclusive end of the range (ParseFrom)
	To      When     // --to: inclusive end of the range, or latest (ParseWhen)
	Include []string // --ns patterns (db, db.* or db.coll); required
	// Filter (Extended JSON text, "" for none) limits the undo to the
	// documents that match it as of From; a document the range inserted
	// (absent at From) is selected when it matches as of To. The target's
	// server evaluates it, on the staged versions.
	Filter string

	Target         string // the deployment to undo in, usually the live one; required (a dry run stages there too)
	Force          bool   // put back conflicting documents as well
	DryRun         bool   // say what would change; write only the staging
	Parallel       int    // snapshot objects loaded at once, and oplog replay lanes, while staging; 0: DefaultParallel
	ConnectTimeout config.Duration
}

// Validate checks an undo request the way both the CLI and the API need it
// checked, before anything is read, and fills the defaults. Errors are
// *InvalidError naming the field.
func (r *UndoRequest) Validate() error {
	switch {
	case r.From.IsZero():
		return invalid("from", "is required: the restore point to put back, "+fromHint, Field("to"))
	case r.From.Latest:
		return invalid("from", "latest: nothing comes after it; "+fromHint, Field("to"))
	case len(r.Include) == 0:
		return invalid("ns", "is required: the namespaces to undo the range in (db, db.* or db.coll; repeatable)")
	case r.Target == "":
		return invalid("target", "is required: the deployment to undo in (a dry run also needs it: the versions are staged there)")
	}
	base := r.request()
	if err := base.Validate(); err != nil {
		return err
	}
	r.Parallel, r.ConnectTimeout = base.Parallel, base.ConnectTimeout
	if !r.To.Latest && !r.From.TS.Before(r.To.TS) {
		return invalid("from", "%s is not before %s %s: the range to undo is after %s up to and including %s", r.From, Field("to"), r.To, Field("from"), Field("to"))
	}
	return nil
}

// request is the restore request the undo's checks share.
func (r *UndoRequest) request() Request {
	return Request{To: r.To, Include: r.Include, Filter: r.Filter, Target: r.Target, Parallel: r.Parallel, ConnectTimeout: r.ConnectTimeout}
}

// fromHint is what --from accepts.
const fromHint = "an RFC 3339 time (2026-11-25T10:30:59Z: the state after that whole second) or an oplog timestamp SECONDS:INCREMENT, before %s"

// ParseFrom reads --from as ParseWhen reads --to, but latest is refused
// (nothing comes after it). Errors are *InvalidError for the field "from".
func ParseFrom(s string) (When, error) {
	if strings.TrimSpace(s) == "latest" {
		return When{}, invalid("from", "latest: nothing comes after it; "+fromHint, Field("to"))
	}
	w, err := ParseWhen(s)
	if inv, ok := err.(*InvalidError); ok {
		inv.Field = "from"
		return When{}, inv
	}
	return w, err
}

// PreparedUndo is an undo planned under a shared lock of the repository,
// held until Release: the plans of the two restore points and the
// documents the range changed.
type PreparedUndo struct {
	Request UndoRequest
	// From and To are the restore plans of the two ends, narrowed to the
	// namespaces the range changed (their oplog ranges resolved).
	From, To Plan

	changes *changes
	repo    *repo.Repository
	held    context.Context
	release func()
}

// PrepareUndo is the one way an undo is planned: take a shared lock of the
// repository (as Prepare), plan a restore to each end of the range (both
// must lie in restore windows of one timeline: the range has no gap), read
// the range (From, To] for the documents it changed, and narrow both plans
// to those. A range that renames or converts a selected collection is
// refused. The caller must call Release.
func PrepareUndo(ctx context.Context, r *repo.Repository, req UndoRequest) (*PreparedUndo, error) {
	held, release, err := holdShared(ctx, r, "undo")
	if err != nil {
		return nil, err
	}
	u := &PreparedUndo{Request: req, repo: r, held: held, release: release}
	if err := u.plan(held); err != nil {
		release()
		return nil, repo.LostError(held, err)
	}
	return u, nil
}

// Release stops refreshing the lock and removes it.
func (u *PreparedUndo) Release() { u.release() }

func (u *PreparedUndo) plan(ctx context.Context) error {
	cat, err := catalog.Load(ctx, u.repo)
	if err != nil {
		return err
	}
	if u.From, err = u.planEnd(ctx, cat, u.Request.From, "start"); err != nil {
		return err
	}
	if u.To, err = u.planEnd(ctx, cat, u.Request.To, "end"); err != nil {
		return err
	}
	segs, err := u.rangeSegments(cat)
	if err != nil {
		return err
	}
	if u.changes, err = readRange(ctx, u.repo, segs, u.From.Target, u.To.Target, u.From.Mapper); err != nil {
		return err
	}
	u.changes.wholeDBs(u.From)
	u.From = u.From.narrowed(u.changes, false)
	u.To = u.To.narrowed(u.changes, true)
	return nil
}

// planEnd plans and resolves the restore to one end of the range (end is
// "start" or "end": its errors are read on the command line and in the
// API, which name the fields differently).
func (u *PreparedUndo) planEnd(ctx context.Context, cat catalog.Catalog, when When, end string) (Plan, error) {
	p, err := Build(cat, Request{To: when, Include: u.Request.Include})
	if err == nil {
		err = p.flavorFallback(u.repo)
	}
	if err == nil {
		err = Resolve(ctx, u.repo, &p)
	}
	if err != nil {
		return p, fmt.Errorf("plan undo: the range's %s, %s: %w", end, when, err)
	}
	return p, nil
}

// rangeSegments are the segments holding (From, To]: on the timeline of
// To's window, which must reach back to From.
func (u *PreparedUndo) rangeSegments(cat catalog.Catalog) ([]repo.SegmentInfo, error) {
	from, to := u.From.Target, u.To.Target
	if !from.Before(to) {
		return nil, fmt.Errorf("plan undo: %w", invalid("from", "%s is not before %s %s (%s): the range to undo is after %s up to and including %s",
			from, Field("to"), u.Request.To, to, Field("from"), Field("to")))
	}
	sh, err := pickShard(cat)
	if err != nil {
		return nil, err
	}
	tl, ok := sh.Timeline(u.To.Window.Timeline)
	if !ok || tl.First.After(from) {
		return nil, fmt.Errorf("plan undo: %w: the oplog between %s and %s is not in one timeline (a gap lies between them: entries are missing); undo a range after the gap, run `rewind list` to see the windows",
			ErrOutsideWindows, describeTS(from), describeTS(to))
	}
	return segmentsBetween(tl.Segments, from, to), nil
}

func describeTS(ts optime.Timestamp) string {
	return fmt.Sprintf("%s (%s)", ts.Time().UTC().Format("2006-01-02T15:04:05Z"), ts)
}

// narrowed is p restricted to the namespaces the range changed: only their
// collections are staged, and only the changed documents of those the
// range did not drop or empty (Plan.only). At the range's end (atTo) a
// document whose last write in the range is a plain delete is known to be
// absent and is not staged: undoing a deleteMany replays none of it.
func (p Plan) narrowed(c *changes, atTo bool) Plan {
	n := p
	n.Views, n.Users, n.Roles, n.Filter, n.Merge = nil, nil, nil, nil, MergeNone
	n.Collections, n.Late = nil, nil
	n.Chunks, n.ChunkBytes, n.Documents = 0, 0, 0
	keep := c.namespaces()
	for _, cp := range p.Collections {
		if keep[cp.Source] {
			n.Collections = append(n.Collections, cp)
			n.Chunks += len(cp.Manifest.Chunks)
			n.ChunkBytes += cp.Manifest.Bytes
			n.Documents += cp.Manifest.Count
		}
	}
	for _, l := range p.Late {
		if keep[l.Source] && !l.View {
			n.Late = append(n.Late, l)
		}
	}
	n.Mapper = Mapper{}
	for ns := range keep {
		n.Mapper.include = append(n.Mapper.include, ns)
	}
	n.droppedDBs = nil
	for _, db := range p.droppedDBs {
		if c.droppedDBs[db] {
			n.droppedDBs = append(n.droppedDBs, db)
		}
	}
	n.only = map[Namespace]idSet{}
	for ns, set := range c.ids {
		switch {
		case c.whole[ns]:
		case atTo:
			kept := newIDSet()
			for _, id := range set.ids {
				if !c.deleted[ns][idKey(id)] {
					kept.add(id)
				}
			}
			n.only[ns] = *kept
		default:
			n.only[ns] = *set
		}
	}
	return n
}
