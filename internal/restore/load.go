package restore

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/xoptions"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
)

// chunkJob is one snapshot object to load into one target collection.
type chunkJob struct {
	coll CollectionPlan
	ref  repo.ChunkRef
}

// maxBatchDocs bounds the documents of one insert (the server's own limit
// is 100,000 per batch; smaller batches keep memory flat).
const maxBatchDocs = 1000

// load reads the selected collections' chunks and inserts their documents
// with unordered bulk inserts of raw BSON, Parallel inserts at a time, while
// Parallel readers decode the next chunks ahead of them (decodeAhead). A
// cluster plan skips orphaned documents (Plan.Orphans): loaded and orphans
// count, per target namespace, the documents inserted and those skipped.
func load(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options) (loaded, orphans map[Namespace]int64, err error) {
	var mu sync.Mutex
	loaded, orphans = map[Namespace]int64{}, map[Namespace]int64{}
	bySource := map[Namespace]*orphanCounts{}
	warnOrphans(o.Log, p)
	err = decodeAhead(ctx, r, p, o.Parallel, readAheadBudget(p, o.Parallel), func(ctx context.Context, j chunkJob, docs []bson.Raw) error {
		docs = p.kept(j, docs)
		var counts orphanCounts
		docs = p.orphans.owned(j, docs, &counts)
		if err := insertChunk(ctx, client, j, docs, o); err != nil {
			return chunkError(p, j, err)
		}
		mu.Lock()
		loaded[j.coll.Target] += int64(len(docs))
		if p.orphans != nil {
			orphans[j.coll.Target] += counts.skipped
			sum := bySource[j.coll.Source]
			if sum == nil {
				sum = &orphanCounts{}
				bySource[j.coll.Source] = sum
			}
			sum.skipped += counts.skipped
			sum.undecided += counts.undecided
			if sum.why == nil {
				sum.why = counts.why
			}
		}
		mu.Unlock()
		o.Progress.addChunk(int64(len(docs))+counts.skipped, j.ref.Bytes) // skipped ones are done too
		return nil
	})
	logOrphans(o.Log, p, bySource)
	return loaded, orphans, err
}

// readAheadChunks is how many chunks per inserter decodeAhead may hold:
// the one being inserted and one decoded for the next insert.
const readAheadChunks = 2

// readAheadBudget is the plaintext decodeAhead may hold for a plan:
// readAheadChunks × parallel × the plan's largest chunk (64 MiB with the
// defaults: 4 inserters, 8 MiB chunks), so memory stays flat with the data
// size and inserters do not wait for decoding.
func readAheadBudget(p Plan, parallel int) int64 {
	var largest int64 = 1
	for _, c := range p.Collections {
		for _, ref := range c.Manifest.Chunks {
			largest = max(largest, ref.Bytes)
		}
	}
	return readAheadChunks * int64(parallel) * largest
}

// decodeAhead reads the plan's chunks in plan order with parallel readers
// (read, checksum, decrypt, decompress, split into documents) and hands
// each to one of parallel calls of use, in whatever order they finish.
// Readers run ahead of use while the chunks being decoded, waiting or
// being used hold at most budget bytes of plaintext (a chunk larger than
// the budget waits until it is alone). The first error stops everything.
func decodeAhead(ctx context.Context, r *repo.Repository, p Plan, parallel int, budget int64,
	use func(ctx context.Context, j chunkJob, docs []bson.Raw) error) error {
	mem := semaphore.NewWeighted(budget)
	weight := func(j chunkJob) int64 { return min(max(j.ref.Bytes, 1), budget) }
	type decoded struct {
		j    chunkJob
		docs []bson.Raw
	}
	g, gctx := errgroup.WithContext(ctx)
	jobs := make(chan chunkJob)
	ready := make(chan decoded, parallel)
	g.Go(func() error {
		defer close(jobs)
		for _, c := range p.Collections {
			for _, ref := range c.Manifest.Chunks {
				select {
				case jobs <- chunkJob{c, ref}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	var readers sync.WaitGroup
	for range parallel {
		readers.Add(1)
		g.Go(func() error {
			defer readers.Done()
			for j := range jobs {
				if err := mem.Acquire(gctx, weight(j)); err != nil {
					return err
				}
				docs, err := r.ReadChunk(gctx, j.ref)
				if err != nil {
					return chunkError(p, j, err)
				}
				select {
				case ready <- decoded{j, docs}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
			return nil
		})
	}
	g.Go(func() error { readers.Wait(); close(ready); return nil })
	for range parallel {
		g.Go(func() error {
			for d := range ready {
				if err := gctx.Err(); err != nil {
					return err // another inserter or reader failed
				}
				err := use(gctx, d.j, d.docs)
				mem.Release(weight(d.j))
				if err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// kept are the documents of chunk j a restricted plan (Plan.only) keeps:
// all of them, unless the plan restores only some documents of j's
// collection (an undo's staging).
func (p *Plan) kept(j chunkJob, docs []bson.Raw) []bson.Raw {
	if _, restricted := p.only[j.coll.Source]; !restricted {
		return docs
	}
	kept := docs[:0]
	for _, d := range docs {
		if p.keeps(j.coll.Source, d) {
			kept = append(kept, d)
		}
	}
	return kept
}

// insertChunk inserts one chunk's documents into its target collection.
func insertChunk(ctx context.Context, client *mongo.Client, j chunkJob, docs []bson.Raw, o Options) error {
	coll := client.Database(j.coll.Target.DB).Collection(j.coll.Target.Coll)
	opts := insertOptions(o.Server)
	for len(docs) > 0 {
		n, size := 0, 0
		for n < len(docs) && n < maxBatchDocs && (n == 0 || size+len(docs[n]) <= o.BatchBytes) {
			size += len(docs[n])
			n++
		}
		batch := make([]any, n)
		for i := range batch {
			batch[i] = docs[i]
		}
		if _, err := coll.InsertMany(ctx, batch, opts); err != nil {
			return fmt.Errorf("insert into %s: %w", j.coll.Target, err)
		}
		docs = docs[n:]
	}
	return nil
}

// insertOptions are the snapshot load's: unordered, and on servers that
// take it bypassEmptyTsReplacement, so a top-level Timestamp(0, 0) is kept
// as the snapshot copied it (see emptyTsBypass).
func insertOptions(s *Server) *options.InsertManyOptionsBuilder {
	opts := options.InsertMany().SetOrdered(false)
	if s.BypassEmptyTsReplacement {
		// Fails only on a wrong key or value type, both fixed here.
		_ = xoptions.SetInternalInsertManyOptions(opts, "addCommandFields", bson.D{{Key: "bypassEmptyTsReplacement", Value: true}})
	}
	return opts
}

// chunkError names the object that failed and, when the object itself is
// missing or damaged, where else a restore could start from.
func chunkError(p Plan, j chunkJob, err error) error {
	if mongo.IsDuplicateKeyError(err) && len(p.Parts) > 0 && p.orphans == nil {
		return fmt.Errorf("load %s from snapshot %s into %s: %w; two shards hold a document with this _id: an orphan a chunk migration left, which this restore cannot skip (%s)",
			j.coll.Source, p.Snapshot.ID, j.coll.Target, err, p.Orphans)
	}
	if mongo.IsDuplicateKeyError(err) {
		// The load writes into collections it created empty, before any
		// unique index but _id's: a duplicate came from another writer.
		return fmt.Errorf("load %s from snapshot %s into %s: %w; the collection received documents from elsewhere while the restore loaded it (another writer, or a restore killed just before: its last insert can still land for about a second): stop that writer, then run the restore again with --drop",
			j.coll.Source, p.Snapshot.ID, j.coll.Target, err)
	}
	if !objectBroken(err) {
		return fmt.Errorf("load %s from snapshot %s: %w", j.coll.Source, p.Snapshot.ID, err)
	}
	return fmt.Errorf("load %s from snapshot %s: object %s cannot be read: %w; this snapshot cannot be restored, %s",
		j.coll.Source, p.Snapshot.ID, j.ref.Key, err, otherWindows(p))
}

// objectBroken reports whether err says a stored object is missing or
// damaged (as opposed to a network or target error).
func objectBroken(err error) bool {
	return errors.Is(err, repo.ErrCorrupt) || errors.Is(err, storage.ErrNotFound) ||
		errors.Is(err, repo.ErrUnsupportedVersion)
}

func otherWindows(p Plan) string {
	var before []catalog.Window
	for _, w := range p.Others {
		if w.From.Before(p.Snapshot.End) {
			before = append(before, w)
		}
	}
	if len(before) == 0 {
		return "and no other snapshot's window lies before it; run `rewind list` to see the windows"
	}
	best := before[0]
	for _, w := range before[1:] {
		if w.To.After(best.To) {
			best = w
		}
	}
	return fmt.Sprintf("the last restore point of another snapshot before it is %s (--to %s, snapshot %s); run `rewind list` to see the windows",
		best.To.Time().Format("2006-01-02T15:04:05Z"), best.To, best.Snapshot)
}
