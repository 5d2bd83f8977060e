package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/storage"
)

// ParseTo checks a drill's --to: latest, random, or a restore point
// (restore.ParseWhen). Errors wrap ErrBadRequest.
func ParseTo(s string) (restore.When, error) {
	switch s {
	case "", Latest:
		return restore.When{Latest: true, Text: Latest}, nil
	case Random:
		return restore.When{}, nil
	}
	w, err := restore.ParseWhen(s)
	if err != nil {
		var inv *restore.InvalidError
		if errors.As(err, &inv) {
			return w, fmt.Errorf("%w: --to %s; or give random", ErrBadRequest, inv.Msg)
		}
		return w, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return w, nil
}

// choose turns req.To into a restore point. A random drill picks one of
// the points that have a usable reference; without any, it sets the
// verdict NoReference and ok false.
func choose(ctx context.Context, d Deps, req Request, res *Result) (restore.When, bool, error) {
	if req.To != Random {
		w, err := ParseTo(req.To)
		return w, err == nil, err
	}
	cat, err := catalog.Load(ctx, d.Repo)
	if err != nil {
		return restore.When{}, false, fmt.Errorf("drill: %w", err)
	}
	shard, points, err := Candidates(ctx, d.Repo, cat, req.Include)
	if err != nil {
		return restore.When{}, false, err
	}
	if shard == "" {
		return restore.When{}, false, fmt.Errorf("drill: %w: the repository has no restore window yet (it needs a snapshot and the oplog after it)", restore.ErrOutsideWindows)
	}
	if len(points) == 0 {
		res.Shard, res.Verdict = shard, NoReference
		res.Problem = NoReferenceMsg + ": no restore point inside the restore windows has recorded checksums for these namespaces; " +
			"run drills with --source right after snapshots (the agent's drills do) to record them, or drill a point the source can still be read at"
		return restore.When{}, false, nil
	}
	pt := points[d.Rand.IntN(len(points))]
	return restore.When{TS: pt, Text: pt.String()}, true, nil
}

// Candidates lists, for the repository's shard with restore windows, the
// points a random drill may pick: those with a recorded reference that a
// window holds and that covers the namespaces include selects. The shard
// is "" when no shard has a window.
func Candidates(ctx context.Context, r *repo.Repository, cat catalog.Catalog, include []string) (string, []optime.Timestamp, error) {
	var sh *catalog.Shard
	for i := range cat.Shards {
		if len(cat.Shards[i].Windows) > 0 {
			sh = &cat.Shards[i]
			break
		}
	}
	if sh == nil {
		return "", nil, nil
	}
	refs, err := r.ListDrillReferences(ctx, sh.ID)
	if err != nil {
		return sh.ID, nil, fmt.Errorf("drill: %w", err)
	}
	var out []optime.Timestamp
	for _, pt := range refs {
		if !slices.ContainsFunc(sh.Windows, func(w catalog.Window) bool { return w.Contains(pt) }) {
			continue
		}
		ref, err := r.ReadDrillReference(ctx, sh.ID, pt)
		if err != nil {
			return sh.ID, nil, fmt.Errorf("drill: %w", err)
		}
		if covers(ref, include) {
			out = append(out, pt)
		}
	}
	return sh.ID, out, nil
}

// covers reports whether a reference holds every collection a drill with
// include selects: it was recorded for everything, or for the same
// patterns.
func covers(ref repo.DrillReference, include []string) bool {
	return len(ref.Include) == 0 || slices.Equal(ref.Include, sortedCopy(include))
}

func sortedCopy(s []string) []string {
	out := slices.Clone(s)
	sort.Strings(out)
	return out
}

// findReference finds the recorded reference whose state is the restored
// point's: one at a point R with lastApplied <= R <= point (no entry lies
// between R and the point, so the state is the same) and R at or after
// the snapshot's start, covering include.
func findReference(ctx context.Context, r *repo.Repository, p restore.Plan, lastApplied optime.Timestamp, include []string) (repo.DrillReference, bool, error) {
	refs, err := r.ListDrillReferences(ctx, p.Shard)
	if err != nil {
		return repo.DrillReference{}, false, err
	}
	low := lastApplied
	if low.IsZero() || low.Before(p.ReplayFrom) {
		low = p.ReplayFrom
	}
	for i := len(refs) - 1; i >= 0; i-- {
		pt := refs[i]
		if pt.After(p.Target) || pt.Before(low) {
			continue
		}
		ref, err := r.ReadDrillReference(ctx, p.Shard, pt)
		if errors.Is(err, storage.ErrNotFound) {
			continue // pruned meanwhile
		}
		if err != nil {
			return ref, false, err
		}
		if covers(ref, include) {
			return ref, true, nil
		}
	}
	return repo.DrillReference{}, false, nil
}

// clock times a drill's phases with the injected clock.
type clock struct {
	now          func() time.Time
	start, since time.Time
	cur          string
	done         []repo.DrillPhase
}

func newClock(now func() time.Time) *clock {
	t := now()
	return &clock{now: now, start: t, since: t}
}

// enter ends the current phase and starts name ("" starts none).
func (c *clock) enter(name string) {
	t := c.now()
	if c.cur != "" {
		c.done = append(c.done, repo.DrillPhase{Name: c.cur, Seconds: t.Sub(c.since).Seconds()})
	}
	c.cur, c.since = name, t
}

// restore adds the restore's own steps, as restore/NAME.
func (c *clock) restore(rep restore.Report) {
	for _, ph := range rep.Phases {
		if ph.Name != "done" {
			c.done = append(c.done, repo.DrillPhase{Name: "restore/" + ph.Name, Seconds: ph.Duration.Seconds()})
		}
	}
}

func (c *clock) phases() []repo.DrillPhase { return c.done }

func (c *clock) total() float64 { return c.now().Sub(c.start).Seconds() }
