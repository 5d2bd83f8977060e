package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
)

// writer is the agent's side of the repository: it holds the writer lock,
// knows the shard and current timeline, and turns batches into segments.
type writer struct {
	src    *source.Source
	repo   *repo.Repository
	store  storage.Store
	lockMu sync.Mutex
	lock   *repo.Lock
	// deleteMu keeps compaction and prune, which share the lock's deleting
	// mode, from running at once.
	deleteMu sync.Mutex
	held     atomic.Bool
	shard    string
	spool    *oplog.Spool
	resume   oplog.Resume
	// canRead is true when the agent can read its own segments back (the
	// repository is not encrypted, or an identity was given): compaction needs it.
	canRead bool

	// sink stores batches; it knows where the stored timeline ends.
	sink *oplog.RepoSink
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
	if w.src, err = source.Connect(ctx, a.Config.Source.Reveal()); err != nil {
		return nil, err
	}
	if err := w.src.CheckRepository(w.repo.Config()); err != nil {
		return nil, err
	}
	w.shard = w.src.Shard()
	if w.lock, err = w.repo.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent"}); err != nil {
		return nil, err
	}
	w.held.Store(true)
	dir := a.Config.Capture.SpoolDir
	if dir == "" {
		dir = defaultSpoolDir(w.repo.Config().ID)
	}
	if w.spool, err = oplog.OpenSpool(dir, a.Config.Capture.SpoolMaxBytes); err != nil {
		return nil, err
	}
	if err := w.findResume(ctx); err != nil {
		return nil, err
	}
	ok = true
	return w, nil
}

// findResume reads the resume point from the repository and the spool: no
// other state is kept.
func (w *writer) findResume(ctx context.Context) error {
	sink, resume, err := oplog.NewRepoSink(ctx, w.repo, w.shard, w.src)
	if err != nil {
		return fmt.Errorf("resume capture: %w", err)
	}
	w.sink, w.resume = sink, resume
	if b, ok, err := w.spool.Newest(); err != nil {
		return err
	} else if ok && b.Last.After(w.resume.After) {
		w.resume = oplog.Resume{Timeline: b.Timeline, After: b.Last}
	}
	if w.resume.Timeline == "" {
		// Nothing stored yet: start at the newest entry, or at the oplog's
		// start when it is empty, so a snapshot of the new deployment can
		// be replayed over.
		w.resume, err = oplog.Begin(ctx, w.src)
	}
	return err
}

// WriteSegment implements oplog.Sink, refusing while the writer lock is lost.
func (w *writer) WriteSegment(ctx context.Context, b oplog.Batch) error {
	if !w.held.Load() {
		return errors.New("the repository writer lock is not held (storage was unreachable for too long); re-acquiring it")
	}
	return w.sink.WriteSegment(ctx, b)
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
func (w *writer) holdLock(ctx context.Context, log *slog.Logger) error {
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
			l, err := w.repo.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "agent", Wait: time.Minute})
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
	if w.src != nil {
		_ = w.src.Close(ctx)
	}
	if w.store != nil {
		_ = w.store.Close()
	}
}
