package snapshot

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readconcern"
	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/repo"
)

// copier copies collections into chunks with a fixed number of workers.
type copier struct {
	client     *mongo.Client
	repo       *repo.Repository
	shard, id  string
	parallel   int
	chunkBytes int
	splitBytes int64
	majority   bool // read with majority read concern (a replica set)
	progress   *Progress
	log        *slog.Logger
	// slots, when set, are shared with other copiers (the parts of a
	// cluster snapshot): a part is copied only while holding one, and
	// packed in the slot's buffer (nil until first used).
	slots chan []byte
}

// result gathers one collection's chunks as its parts finish.
type result struct {
	info   *collInfo
	mu     sync.Mutex
	next   int
	chunks map[int]repo.ChunkRef
	// parts and done count the collection's parts, for progress.
	parts, done int
}

// finishPart reports whether the collection's last part just finished.
func (r *result) finishPart() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	return r.done == r.parts
}

func (r *result) take() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.next
	r.next++
	return n
}

func (r *result) add(n int, ref repo.ChunkRef) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.chunks[n] = ref
}

// manifest returns the collection's manifest entry, chunks in key order.
func (r *result) manifest() repo.CollectionManifest {
	c := r.info
	m := repo.CollectionManifest{DB: c.db, Name: c.name, UUID: c.id, Options: c.options, Indexes: c.indexes,
		Chunks: []repo.ChunkRef{}}
	for n := 0; n < r.next; n++ {
		ref := r.chunks[n]
		m.Chunks = append(m.Chunks, ref)
		m.Count += ref.Count
		m.Bytes += ref.Bytes
	}
	return m
}

// part is one unit of work: a collection, or an _id range of one.
type part struct {
	res    *result
	filter bson.D
}

// run copies every collection of cat and returns their manifests in
// catalog order.
func (cp *copier) run(ctx context.Context, cat *catalog) ([]repo.CollectionManifest, error) {
	results := make([]*result, len(cat.colls))
	for i, c := range cat.colls {
		results[i] = &result{info: c, chunks: map[int]repo.ChunkRef{}}
	}
	// Largest first, so one big collection does not finish alone at the end.
	order := slices.Clone(results)
	sort.SliceStable(order, func(a, b int) bool { return order[a].info.estBytes > order[b].info.estBytes })

	g, gctx := errgroup.WithContext(ctx)
	parts := make(chan part)
	g.Go(func() error {
		defer close(parts)
		for _, r := range order {
			filters := cp.split(gctx, r.info)
			r.mu.Lock()
			r.parts = len(filters)
			r.mu.Unlock()
			cp.progress.addParts(len(filters))
			for _, f := range filters {
				select {
				case parts <- part{res: r, filter: f}:
				case <-gctx.Done():
					return gctx.Err()
				}
			}
		}
		return nil
	})
	for range cp.parallel {
		g.Go(func() error {
			// One packing buffer per worker, reused for every chunk of
			// every part it copies: memory stays at about one chunk per
			// worker whatever the data size or the number of collections.
			// A cluster snapshot's parts share their buffers with their
			// slots instead (copySlot): one per slot, not per worker.
			w := chunkWriter{cp: cp}
			if cp.slots == nil {
				w.buf = make([]byte, 0, cp.chunkBytes)
			}
			for p := range parts {
				w.res = p.res
				if err := cp.copySlot(gctx, p, &w); err != nil {
					return err
				}
				if p.res.finishPart() {
					cp.progress.collectionDone()
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := make([]repo.CollectionManifest, len(results))
	for i, r := range results {
		out[i] = r.manifest()
	}
	return out, nil
}

// copySlot copies p while holding a shared slot, when there are slots
// (a cluster snapshot's parts share them). A slot is a packing buffer:
// memory stays at one chunk per slot however many parts and workers wait
// for one (each part has --parallel workers).
func (cp *copier) copySlot(ctx context.Context, p part, w *chunkWriter) error {
	if cp.slots == nil {
		return cp.copyPart(ctx, p, w)
	}
	var buf []byte
	select {
	case buf = <-cp.slots:
	case <-ctx.Done():
		return ctx.Err()
	}
	if buf == nil {
		buf = make([]byte, 0, cp.chunkBytes)
	}
	w.buf = buf
	defer func() {
		cp.slots <- w.buf[:0]
		w.buf = nil
	}()
	return cp.copyPart(ctx, p, w)
}

// copyPart streams one part's documents into chunks through w, the
// worker's chunkWriter (its buffer is empty between parts).
func (cp *copier) copyPart(ctx context.Context, p part, w *chunkWriter) error {
	c := p.res.info
	collOpts := options.Collection()
	if cp.majority {
		collOpts.SetReadConcern(readconcern.Majority())
	}
	coll := cp.client.Database(c.db).Collection(c.name, collOpts)
	filter := p.filter
	if filter == nil {
		filter = bson.D{}
	}
	cur, err := coll.Find(ctx, filter, options.Find().SetBatchSize(1000))
	if err != nil {
		return fmt.Errorf("copy %s.%s: %w", c.db, c.name, explain(err))
	}
	defer cur.Close(context.WithoutCancel(ctx))
	// Documents are packed into w's buffer, which is the chunk's plaintext
	// as it is stored: WriteChunkData keeps nothing of it.
	for cur.Next(ctx) {
		if err := w.add(ctx, cur.Current); err != nil {
			return err
		}
	}
	if err := cur.Err(); err != nil {
		return fmt.Errorf("copy %s.%s: %w", c.db, c.name, explain(err))
	}
	return w.flush(ctx)
}

// chunkWriter packs a worker's documents, part after part, into chunks
// of at most chunkBytes (a single larger document makes a chunk of its
// own) in one reused buffer.
type chunkWriter struct {
	cp  *copier
	res *result // the part being copied
	buf []byte
}

func (w *chunkWriter) add(ctx context.Context, doc bson.Raw) error {
	if len(w.buf) > 0 && len(w.buf)+len(doc) > w.cp.chunkBytes {
		if err := w.flush(ctx); err != nil {
			return err
		}
	}
	w.buf = append(w.buf, doc...)
	return nil
}

func (w *chunkWriter) flush(ctx context.Context) error {
	if len(w.buf) == 0 {
		return nil
	}
	c := w.res.info
	n := w.res.take()
	ref, err := w.cp.repo.WriteChunkData(ctx, w.cp.shard, w.cp.id, c.id, n, w.buf)
	if err != nil {
		return fmt.Errorf("copy %s.%s: %w", c.db, c.name, err)
	}
	w.res.add(n, ref)
	w.cp.progress.addChunk(ref.Count, ref.Bytes)
	w.buf = w.buf[:0]
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (Go >= 1.24)
	return hex.EncodeToString(b)
}
