package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// CaptureMode says who makes the snapshot's oplog range durable.
type CaptureMode int

const (
	// CaptureAuto waits for a running agent (fresh heartbeat, or the writer
	// lock held), and otherwise captures the range itself.
	CaptureAuto CaptureMode = iota
	// CaptureByAgent only waits: the caller is the agent, which captures.
	CaptureByAgent
)

// Defaults for Options.
const (
	DefaultParallel    = 4
	DefaultChunkBytes  = 8 << 20
	DefaultSplitBytes  = 64 << 20
	DefaultWaitTimeout = 5 * time.Minute
)

// Options configure Take. The zero value takes a snapshot of everything.
type Options struct {
	Filter   Filter
	Parallel int // collections (or parts) copied at once; default DefaultParallel
	// ChunkBytes bounds a chunk's plaintext; default DefaultChunkBytes.
	ChunkBytes int
	// SplitBytes is the size of the _id-range parts a large collection is
	// copied in. 0 picks the default: DefaultSplitBytes on MongoDB, never
	// on FerretDB (it does not push _id ranges down, so every part would
	// read the whole collection). Negative never splits.
	SplitBytes int64
	Capture    CaptureMode
	// WaitTimeout bounds the wait for a running agent to make the range
	// durable; default DefaultWaitTimeout.
	WaitTimeout time.Duration
	Progress    *Progress
	Log         *slog.Logger
	// Shard, when not "", is the shard id of a sharded cluster's shard
	// that src connects to (its name in config.shards, as the cluster's
	// agent stores it): the snapshot is stored under it, and src is checked
	// against the repository as that shard (source.CheckShard). "" is a
	// replica set's own id, src.Shard().
	Shard string

	// part is set when the snapshot is one shard's part of a cluster
	// snapshot (TakeCluster).
	part *partOf
}

// partOf is what a cluster snapshot gives each of its parts: the shard id
// it is stored under, the snapshot id all parts share, and the copy slots
// all parts share (--parallel bounds the whole cluster's copy).
type partOf struct {
	shard, id string
	slots     chan []byte
}

// shardOf is where src's snapshot is stored: its own shard id, the
// cluster shard's name for a part, or Shard when given.
func (o *Options) shardOf(src *source.Source) string {
	switch {
	case o.part != nil:
		return o.part.shard
	case o.Shard != "":
		return o.Shard
	}
	return src.Shard()
}

func (o *Options) defaults(src *source.Source) {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.SplitBytes == 0 && src.Caps.IDRangeQueries {
		o.SplitBytes = DefaultSplitBytes
	}
	if o.WaitTimeout <= 0 {
		o.WaitTimeout = DefaultWaitTimeout
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
}

// Take takes one snapshot of src into r and returns its manifest, written
// last. On error or cancellation no manifest exists; chunks already stored
// stay under the snapshot id's data prefix for prune to remove.
func Take(ctx context.Context, src *source.Source, r *repo.Repository, o Options) (repo.Manifest, error) {
	o.defaults(src)
	check := func() error { return src.CheckRepository(r.Config()) }
	if o.Shard != "" {
		check = func() error { return src.CheckShard(r.Config(), o.Shard) }
	}
	if err := check(); err != nil {
		return repo.Manifest{}, err
	}
	var m repo.Manifest
	err := withLocks(ctx, r, o.shardOf(src), o, func(ctx context.Context, writer *repo.Lock) error {
		// The range first: a start decided after the copy reads the oplog
		// while the catalog is listed and the copy runs (deferredStart).
		rng, err := newOplogRange(ctx, src, r, o, writer)
		if err != nil {
			return err
		}
		defer rng.stop()
		cat, err := listed(ctx, src, o)
		if err == nil {
			m, err = take(ctx, src, r, o, cat, rng)
		}
		return err
	})
	return m, err
}

// listed lists what the snapshot copies, logging the count.
func listed(ctx context.Context, src *source.Source, o Options) (*catalog, error) {
	began := time.Now()
	cat, err := listCatalog(ctx, src.Client, o.Filter)
	if err != nil {
		return nil, err
	}
	o.Log.Info("catalog listed", "collections", len(cat.colls), "views", len(cat.views), "users", len(cat.users),
		"roles", len(cat.roles), "duration", time.Since(began).Round(time.Millisecond).String())
	return cat, nil
}

// withLocks runs body holding what a snapshot needs: a shared lock on the
// repository, and the writer lock when no agent captures shard (then
// writer is non-nil and the snapshot captures its own oplog range). A lost
// lock cancels body's ctx and is reported instead of the cancellation.
func withLocks(ctx context.Context, r *repo.Repository, shard string, o Options, body func(context.Context, *repo.Lock) error) error {
	g, gctx := errgroup.WithContext(ctx)
	defer func() { _ = g.Wait() }()
	holdCtx, release := context.WithCancel(gctx)
	defer release()

	writer, err := chooseCapture(ctx, r, shard, o)
	if err != nil {
		return err
	}
	if writer != nil {
		defer unlock(writer)
		g.Go(func() error { return writer.Run(holdCtx) })
	}
	shared, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "snapshot", Wait: time.Minute})
	if err != nil {
		return fmt.Errorf("lock the repository for the snapshot: %w", err)
	}
	defer unlock(shared)
	g.Go(func() error { return shared.Run(holdCtx) })

	err = body(gctx, writer)
	release()
	if werr := g.Wait(); werr != nil && (err == nil || ctx.Err() == nil) {
		err = fmt.Errorf("hold the repository lock: %w", werr)
	}
	return err
}

// take copies, makes the oplog range rng durable and writes the manifest.
// The locks are held by the caller.
func take(ctx context.Context, src *source.Source, r *repo.Repository, o Options, cat *catalog, rng *oplogRange) (repo.Manifest, error) {
	var err error
	id := repo.NewSnapshotID(time.Now())
	var slots chan []byte
	if o.part != nil {
		id, slots = o.part.id, o.part.slots
	}
	m := repo.Manifest{ID: id, Shard: rng.shard, Flavor: string(src.Flavor),
		Start: rng.start, FromEmptyOplog: rng.fromEmpty, Started: time.Now(), Views: cat.views, Users: cat.users, Roles: cat.roles}
	start := m.Start.String()
	if rng.deferred != nil {
		start = "decided after the copy"
	}
	o.Log.Info("snapshot started", "id", m.ID, "start", start, "empty_oplog", m.FromEmptyOplog,
		"collections", len(cat.colls), "views", len(cat.views))
	rng.begin(ctx)

	o.Progress.setTotals(cat)
	cp := &copier{client: src.Client, repo: r, shard: rng.shard, id: m.ID, parallel: o.Parallel,
		chunkBytes: o.ChunkBytes, splitBytes: o.SplitBytes, majority: src.Caps.MajorityReads, progress: o.Progress, log: o.Log, slots: slots}
	copied := time.Now()
	if m.Collections, err = cp.run(ctx, cat); err != nil {
		return repo.Manifest{}, err
	}
	d, b, c := o.Progress.Counts()
	o.Log.Info("collections copied", "documents", d, "bytes", b, "chunks", c, "parts", o.Progress.Parts(),
		"duration", time.Since(copied).Round(time.Millisecond).String())
	if m.End, err = rng.finish(ctx); err != nil {
		return repo.Manifest{}, err
	}
	m.Start, m.FromEmptyOplog = rng.start, rng.fromEmpty
	m.Finished = time.Now()
	if err := r.WriteManifest(ctx, m); err != nil {
		return repo.Manifest{}, err
	}
	o.Log.Info("snapshot complete", "id", m.ID, "start", m.Start.String(), "end", m.End.String(),
		"collections", len(m.Collections), "documents", d, "bytes", b, "duration", m.Finished.Sub(m.Started).Round(time.Millisecond).String())
	return m, nil
}

// chooseCapture decides who captures the range: it returns the writer lock
// when this snapshot must capture it itself, nil when an agent does.
func chooseCapture(ctx context.Context, r *repo.Repository, shard string, o Options) (*repo.Lock, error) {
	if o.Capture == CaptureByAgent {
		return nil, nil
	}
	live, err := agentCapturing(ctx, r, shard, time.Now())
	if err != nil {
		return nil, fmt.Errorf("read the agent's heartbeat: %w", err)
	}
	if live {
		o.Log.Info("an agent is capturing this repository; the snapshot will wait for it to store the oplog range")
		return nil, nil
	}
	l, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockExclusive, Purpose: "snapshot"})
	var le *repo.LockedError
	if errors.As(err, &le) {
		o.Log.Info("another writer holds the repository; the snapshot will wait for it to store the oplog range",
			"holder", le.Holder.Purpose, "host", le.Holder.Host, "pid", le.Holder.PID)
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock the repository: %w", err)
	}
	return l, nil
}

func unlock(l *repo.Lock) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = l.Unlock(ctx)
}
