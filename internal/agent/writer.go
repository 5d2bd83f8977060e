package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
)

// writer is the agent's side of the repository: it holds the writer lock
// and the capture units, one per shard, that turn batches into segments.
type writer struct {
	// unit is the first unit: a replica set's only one, whose shard the
	// snapshot schedule, the API and the alerts follow.
	*unit
	// units are every unit; a cluster's agent adds one while it runs when
	// a shard joins the cluster (unitsMu; read them with allUnits).
	unitsMu sync.Mutex
	units   []*unit
	// startUnit runs a unit's capture, set once Run starts the first ones.
	startUnit func(*unit)
	// spoolBase is the agent's spool directory (a cluster's units each
	// have a subdirectory).
	spoolBase string
	// cluster is the sharded cluster captured, nil for a replica set.
	cluster *clusterState
	repo    *repo.Repository
	store   storage.Store
	lockMu  sync.Mutex
	lock    *repo.Lock
	// deleteMu keeps compaction and prune, which share the lock's deleting
	// mode, from running at once.
	deleteMu sync.Mutex
	held     atomic.Bool
	// canRead is true when the agent can read its own segments back (the
	// repository is not encrypted, or an identity was given): compaction needs it.
	canRead bool
}

func (a *Agent) open(ctx context.Context) (*writer, error) {
	if err := a.Config.Validate(); err != nil {
		return nil, err
	}
	store, err := storage.Open(ctx, a.Config.Repo)
	if err != nil {
		return nil, err
	}
	w := &writer{store: store}
	ok := false
	defer func() {
		if !ok {
			w.close()
		}
	}()
	ids, err := repo.ParseIdentity(a.Config.Identity.Reveal())
	if err != nil {
		return nil, err
	}
	if w.repo, err = repo.Open(ctx, store, repo.OpenOptions{Location: redact.URL(a.Config.Repo), Identities: ids}); err != nil {
		return nil, err
	}
	w.canRead = !w.repo.Config().Encrypted() || len(ids) > 0
	// The lock first: a server standing by for a repository another
	// process holds finds out without connecting to the source.
	if w.lock, err = w.repo.Lock(ctx, a.lockOptions(0)); err != nil {
		return nil, err
	}
	w.held.Store(true)
	if err := a.connect(ctx, w); err != nil {
		return nil, err
	}
	dir := a.Config.Capture.SpoolDir
	if dir == "" {
		dir = defaultSpoolDir(w.repo.Config().ID)
	}
	w.spoolBase = dir
	for _, u := range w.allUnits() {
		if err := w.openUnit(ctx, u, spoolDir(dir, u, w.cluster != nil), a.Config.Capture.SpoolMaxBytes); err != nil {
			return nil, err
		}
	}
	ok = true
	return w, nil
}

// connect connects the units: the one source of a replica set, or every
// shard and the config server of a cluster (named by hand, or found
// through the mongos given as source), each checked against what the
// repository records.
func (a *Agent) connect(ctx context.Context, w *writer) error {
	cfg := a.Config
	in := cluster.Inputs{Router: cfg.Source.Reveal(), ConfigServer: cfg.ConfigServer.Reveal()}
	for _, s := range cfg.Shards {
		in.Shards = append(in.Shards, cluster.Shard{Name: s.Name, URI: s.URI.Reveal()})
	}
	d, err := source.OpenDeployment(ctx, in)
	if err != nil {
		return err
	}
	if d.Single != nil {
		w.addUnit(&unit{src: d.Single, shard: d.Single.Shard(), stats: a.stats.Load(), log: a.Log})
	} else {
		a.addClusterUnits(w, d)
	}
	return d.CheckRepository(w.repo.Config())
}

// addUnit adds a connected unit; the first becomes the writer's primary.
func (w *writer) addUnit(u *unit) {
	w.unitsMu.Lock()
	defer w.unitsMu.Unlock()
	if w.unit == nil {
		w.unit = u
	}
	w.units = append(w.units, u)
}

// allUnits are the units now, a copy.
func (w *writer) allUnits() []*unit {
	w.unitsMu.Lock()
	defer w.unitsMu.Unlock()
	return slices.Clone(w.units)
}

// lockOptions are the writer lock's, timed by the lock section; wait is
// how long a refused attempt keeps retrying.
func (a *Agent) lockOptions(wait time.Duration) repo.LockOptions {
	return repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent", Wait: wait,
		RefreshEvery: a.Config.Lock.Refresh.Std(), StaleAfter: a.Config.Lock.StaleAfter.Std()}
}

// currentLock is the held writer lock, or nil while it is lost.
func (w *writer) currentLock() *repo.Lock {
	if !w.held.Load() {
		return nil
	}
	w.lockMu.Lock()
	defer w.lockMu.Unlock()
	return w.lock
}

// holdLock refreshes the writer lock; if it is lost (storage unreachable for
// longer than the lock's staleness), uploads pause until it is taken again.
func (w *writer) holdLock(ctx context.Context, log *slog.Logger, opts repo.LockOptions) error {
	for {
		w.lockMu.Lock()
		l := w.lock
		w.lockMu.Unlock()
		err := l.Run(ctx)
		if ctx.Err() != nil {
			return nil
		}
		w.held.Store(false)
		log.Error("repository lock lost; uploads paused, capture goes on into the spool", "err", err)
		for {
			l, err := w.repo.Lock(ctx, opts)
			if err == nil {
				w.lockMu.Lock()
				w.lock = l
				w.lockMu.Unlock()
				w.held.Store(true)
				log.Info("repository lock taken again")
				break
			}
			if ctx.Err() != nil {
				return nil
			}
			var le *repo.LockedError
			if errors.As(err, &le) {
				return fmt.Errorf("another writer took the repository while this agent could not reach it: %w", err)
			}
			log.Warn("re-acquire repository lock failed; retrying", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
		}
	}
}

func (w *writer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if w.lock != nil {
		_ = w.lock.Unlock(ctx)
	}
	for _, u := range w.allUnits() {
		_ = u.src.Close(ctx)
	}
	if w.store != nil {
		_ = w.store.Close()
	}
}
