package restore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// ErrNoLock means the repository could not be locked for reading (another
// process deletes from it, or the store is unreachable).
var ErrNoLock = errors.New("lock the repository for reading")

// Prepared is a restore planned under a shared lock of the repository,
// which it holds until Release: nothing the plan reads can be pruned or
// compacted away before the restore has read it.
type Prepared struct {
	Request Request
	Plan    Plan // resolved: Entries and Late are filled

	repo    *repo.Repository
	held    context.Context // cancelled with repo.ErrLockLost when the lock is lost
	release func()
}

// Prepare is the one way a restore is planned, for the CLI, the API and
// verify's trial restore: take a shared lock of the repository (waiting up
// to 30 s for a prune to finish) and keep it refreshed, load the catalog,
// Build the plan, fall back to the repository's source flavor when neither
// the timeline record nor the snapshot says how to replay, and Resolve the
// oplog range. The lock lives as long as ctx, or until Release, which the
// caller must call. req should have been validated (Request.Validate).
func Prepare(ctx context.Context, r *repo.Repository, req Request) (*Prepared, error) {
	req.defaults()
	held, release, err := holdShared(ctx, r, "restore")
	if err != nil {
		return nil, err
	}
	p := &Prepared{Request: req, repo: r, held: held, release: release}
	if err := p.plan(held); err != nil {
		release()
		return nil, repo.LostError(held, err)
	}
	return p, nil
}

// holdShared takes a shared lock of the repository for purpose (waiting
// up to 30 s for a prune to finish) and keeps it refreshed: held is
// cancelled with repo.ErrLockLost when the lock is lost; release ends it.
func holdShared(ctx context.Context, r *repo.Repository, purpose string) (held context.Context, release func(), err error) {
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: purpose, Wait: 30 * time.Second})
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrNoLock, err)
	}
	held, release = lock.Hold(ctx)
	return held, release, nil
}

func (p *Prepared) plan(ctx context.Context) error {
	cat, err := catalog.Load(ctx, p.repo)
	if err != nil {
		return err
	}
	if p.Plan, err = Build(cat, p.Request); err != nil {
		return err
	}
	if err := p.Plan.flavorFallback(p.repo); err != nil {
		return err
	}
	return Resolve(ctx, p.repo, &p.Plan)
}

// flavorFallback sets the flavor when neither the timeline record nor the
// manifest says it: the flavor the repository was initialized for
// (MongoDB when it records none).
func (p *Plan) flavorFallback(r *repo.Repository) error {
	if p.Flavor != "" {
		return nil
	}
	var err error
	if p.Flavor, err = source.ParseFlavor(r.Config().Source.Flavor); err != nil {
		return fmt.Errorf("plan restore: %w", err)
	}
	return nil
}

// Release stops refreshing the lock and removes it.
func (p *Prepared) Release() { p.release() }

// Check looks at the target for namespaces in the way (see Check): what a
// dry run reports, and what Execute refuses.
func (p *Prepared) Check(ctx context.Context, t *Target) ([]Finding, error) {
	ctx, done := p.scope(ctx)
	defer done()
	f, err := Check(ctx, t.Client, p.Plan)
	return f, repo.LostError(ctx, err)
}

// Execute carries the plan out on the target with the request's Drop and
// Parallel (see Execute); o gives the progress and the log. It records an
// audit entry in the repository (repo.Audited), with the actor of ctx,
// before it writes to the target, and its outcome after. A restore cut
// short by a lost lock says so, and, as every failed restore, what the
// target holds now.
func (p *Prepared) Execute(ctx context.Context, t *Target, o Options) (Report, error) {
	ctx, done := p.scope(ctx)
	defer done()
	o.Drop, o.Parallel, o.Server = p.Request.Drop, p.Request.Parallel, &t.Server
	o.Checksum = o.Checksum || p.Request.Checksum
	plan := p.Plan
	e := repo.AuditEntry{Action: repo.AuditRestore, Target: p.Request.Target, Namespaces: p.Request.Include,
		To: fmt.Sprintf("%s (%s)", p.Request.To, plan.Target)}
	rep, err := repo.Audited(ctx, p.repo, o.Log, e, func() (Report, error) {
		rep, wrote, err := execute(ctx, p.repo, t.Client, &plan, o)
		return rep, stateError(plan, wrote, repo.LostError(ctx, err))
	}, restoreDetail)
	if errors.Is(err, repo.ErrNotAudited) {
		err = stateError(plan, false, repo.LostError(ctx, err))
	}
	return rep, err
}

// Scope is ctx, also cancelled (with the same cause, repo.ErrLockLost)
// when the plan's lock is lost: for work other than Execute that reads what
// the plan names, such as a server-free export. Call done when finished,
// and pass its errors through repo.LostError so a lost lock says so.
func (p *Prepared) Scope(ctx context.Context) (context.Context, func()) { return p.scope(ctx) }

// scope is ctx, also cancelled (with the same cause) when the lock is lost.
func (p *Prepared) scope(ctx context.Context) (context.Context, func()) {
	return lockScope(ctx, p.held)
}

// lockScope is ctx, also cancelled (with the same cause) when held is.
func lockScope(ctx, held context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(held, func() { cancel(context.Cause(held)) })
	return ctx, func() { stop(); cancel(context.Canceled) }
}
