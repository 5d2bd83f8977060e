package snapshot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/oplog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
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
}

func (o *Options) defaults(src *oplog.Source) {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.ChunkBytes <= 0 {
		o.ChunkBytes = DefaultChunkBytes
	}
	if o.SplitBytes == 0 && src.Flavor != oplog.FlavorFerretDB {
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

// ShardID is the key component for a source: its replica set name, or the
// flavor for a FerretDB source, which has none (as the agent names it).
func ShardID(src *oplog.Source) string {
	if src.SetName == "" {
		return string(src.Flavor)
	}
	return repo.ShardID(src.SetName)
}

// Take takes one snapshot of src into r and returns its manifest, written
// last. On error or cancellation no manifest exists; chunks already stored
// stay under the snapshot id's data prefix for prune to remove.
func Take(ctx context.Context, src *oplog.Source, r *repo.Repository, o Options) (repo.Manifest, error) {
	o.defaults(src)
	shard := ShardID(src)
	if err := src.CheckRepository(r.Config()); err != nil {
		return repo.Manifest{}, err
	}
	g, gctx := errgroup.WithContext(ctx)
	defer func() { _ = g.Wait() }()
	holdCtx, release := context.WithCancel(gctx)
	defer release()

	writer, err := chooseCapture(ctx, r, shard, o)
	if err != nil {
		return repo.Manifest{}, err
	}
	if writer != nil {
		defer unlock(writer)
		g.Go(func() error { return writer.Run(holdCtx) })
	}
	listed := time.Now()
	cat, err := listCatalog(ctx, src.Client, o.Filter)
	if err != nil {
		return repo.Manifest{}, err
	}
	o.Log.Info("catalog listed", "collections", len(cat.colls), "views", len(cat.views), "users", len(cat.users),
		"roles", len(cat.roles), "duration", time.Since(listed).Round(time.Millisecond).String())
	shared, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "snapshot", Wait: time.Minute})
	if err != nil {
		return repo.Manifest{}, fmt.Errorf("lock the repository for the snapshot: %w", err)
	}
	defer unlock(shared)
	g.Go(func() error { return shared.Run(holdCtx) })

	m, err := take(gctx, src, r, o, cat, writer)
	release()
	// A lost lock cancels the copy: report it rather than the cancellation.
	if werr := g.Wait(); werr != nil && (err == nil || ctx.Err() == nil) {
		err = fmt.Errorf("hold the repository lock: %w", werr)
	}
	return m, err
}

// take copies, makes the oplog range durable and writes the manifest. The
// locks are held by the caller.
func take(ctx context.Context, src *oplog.Source, r *repo.Repository, o Options, cat *catalog, writer *repo.Lock) (repo.Manifest, error) {
	shard := ShardID(src)
	start, err := src.NewestEntry(ctx)
	if err != nil {
		return repo.Manifest{}, fmt.Errorf("note the snapshot's start: %w", err)
	}
	if start.IsZero() {
		return repo.Manifest{}, errors.New("the source's oplog is empty, so the snapshot has no start point: write to the source (or wait for its periodic no-op entry) and re-run")
	}
	m := repo.Manifest{ID: repo.NewSnapshotID(time.Now()), Shard: shard, Flavor: string(src.Flavor),
		Start: start, Started: time.Now(), Views: cat.views, Users: cat.users, Roles: cat.roles}
	o.Log.Info("snapshot started", "id", m.ID, "start", start.String(), "collections", len(cat.colls), "views", len(cat.views))

	var endMu sync.Mutex
	var end optime.Timestamp
	endKnown := func() (optime.Timestamp, bool) {
		endMu.Lock()
		defer endMu.Unlock()
		return end, !end.IsZero()
	}
	setEnd := func(e optime.Timestamp) {
		endMu.Lock()
		defer endMu.Unlock()
		if end.IsZero() {
			end = e
		}
	}
	// On FerretDB, when this snapshot captures the range itself, it does so
	// after the copy: the first complete read of that capture begins after
	// the copy ended, so the newest entry it reads is a valid end. That
	// spares a full scan of the oplog (FerretDB cannot seek by ts).
	endFromCapture := writer != nil && src.Flavor == oplog.FlavorFerretDB
	capCtx, stopCapture := context.WithCancel(ctx)
	capDone := make(chan error, 1)
	var once sync.Once
	started, waited := false, false
	runCapture := func() {
		once.Do(func() {
			started = true
			rc := &rangeCapture{src: src, repo: r, lock: writer, shard: shard, log: o.Log}
			if endFromCapture {
				rc.caughtUp = setEnd
			}
			go func() { capDone <- rc.run(capCtx, start, endKnown) }()
		})
	}
	defer func() {
		// Never leave a capture running behind an error.
		stopCapture()
		if started && !waited {
			<-capDone
		}
	}()
	// On MongoDB the capture runs during the copy, so a long copy cannot
	// outlive the oplog window; on FerretDB every poll of the oplog reads
	// all of it, so it runs once the copy is done.
	if writer != nil && src.Flavor != oplog.FlavorFerretDB {
		runCapture()
	}

	o.Progress.setTotals(cat)
	cp := &copier{client: src.Client, repo: r, shard: shard, id: m.ID, parallel: o.Parallel,
		chunkBytes: o.ChunkBytes, splitBytes: o.SplitBytes, majority: src.Flavor == oplog.FlavorMongoDB, progress: o.Progress, log: o.Log}
	copied := time.Now()
	if m.Collections, err = cp.run(ctx, cat); err != nil {
		return repo.Manifest{}, err
	}
	d, b, c := o.Progress.Counts()
	o.Log.Info("collections copied", "documents", d, "bytes", b, "chunks", c, "parts", o.Progress.Parts(),
		"duration", time.Since(copied).Round(time.Millisecond).String())
	var e optime.Timestamp
	if !endFromCapture {
		if e, err = src.NewestEntry(ctx); err != nil {
			return repo.Manifest{}, fmt.Errorf("note the snapshot's end: %w", err)
		}
		setEnd(e)
	}
	waited = writer != nil
	if err := finishRange(ctx, r, shard, o, writer, start, e, runCapture, capDone); err != nil {
		return repo.Manifest{}, err
	}
	if e, _ = endKnown(); e.IsZero() {
		return repo.Manifest{}, errors.New("the snapshot's oplog range capture ended without reading the oplog's newest entry")
	}
	m.End = e
	m.Finished = time.Now()
	if err := r.WriteManifest(ctx, m); err != nil {
		return repo.Manifest{}, err
	}
	o.Log.Info("snapshot complete", "id", m.ID, "start", m.Start.String(), "end", m.End.String(),
		"collections", len(m.Collections), "documents", d, "bytes", b, "duration", m.Finished.Sub(m.Started).Round(time.Millisecond).String())
	return m, nil
}

// finishRange makes [start, end] durable: by the capture this snapshot runs
// (started now if it is not running yet), or by waiting for the agent.
func finishRange(ctx context.Context, r *repo.Repository, shard string, o Options, writer *repo.Lock,
	start, end optime.Timestamp, runCapture func(), capDone chan error) error {
	if writer == nil {
		o.Log.Info("waiting for the agent to make the snapshot's oplog range durable", "start", start.String(), "end", end.String())
		return waitCovered(ctx, r, shard, start, end, o.WaitTimeout)
	}
	runCapture()
	until := end.String()
	if end.IsZero() {
		until = "the oplog's newest entry"
	}
	o.Log.Info("capturing the snapshot's oplog range (no agent is running)", "start", start.String(), "end", until)
	if err := <-capDone; err != nil {
		return fmt.Errorf("capture the snapshot's oplog range: %w", err)
	}
	return nil
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
