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

// load reads the selected collections' chunks, Parallel at a time, and
// inserts their documents with unordered bulk inserts of raw BSON. Memory
// stays near Parallel chunks.
func load(ctx context.Context, r *repo.Repository, client *mongo.Client, p Plan, o Options) (map[Namespace]int64, error) {
	jobs := make(chan chunkJob)
	g, gctx := errgroup.WithContext(ctx)
	var mu sync.Mutex
	loaded := map[Namespace]int64{}
	for range o.Parallel {
		g.Go(func() error {
			for j := range jobs {
				n, err := loadChunk(gctx, r, client, &p, j, o)
				if err != nil {
					return chunkError(p, j, err)
				}
				mu.Lock()
				loaded[j.coll.Target] += n
				mu.Unlock()
				o.Progress.addChunk(n, j.ref.Bytes)
			}
			return nil
		})
	}
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
	return loaded, g.Wait()
}

func loadChunk(ctx context.Context, r *repo.Repository, client *mongo.Client, p *Plan, j chunkJob, o Options) (int64, error) {
	docs, err := r.ReadChunk(ctx, j.ref)
	if err != nil {
		return 0, err
	}
	count := j.ref.Count
	if _, restricted := p.only[j.coll.Source]; restricted {
		kept := docs[:0]
		for _, d := range docs {
			if p.keeps(j.coll.Source, d) {
				kept = append(kept, d)
			}
		}
		docs, count = kept, int64(len(kept))
	}
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
			return 0, fmt.Errorf("insert into %s: %w", j.coll.Target, err)
		}
		docs = docs[n:]
	}
	return count, nil
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
