package export

import (
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/storage"
)

// eachChunk reads a snapshot collection's chunks in order, up to
// Options.Parallel at once, and calls fn with every document and its
// idKey, in the snapshot's order. Memory stays near Parallel chunks.
func (s *State) eachChunk(ctx context.Context, c restore.CollectionPlan, fn func(doc bson.Raw, key string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type read struct {
		docs []bson.Raw
		err  error
	}
	// queue holds the reads in flight, in chunk order; each is answered on
	// its own channel, so they finish in any order and are used in order.
	queue := make(chan chan read, s.o.Parallel-1)
	go func() {
		defer close(queue)
		for _, ref := range c.Manifest.Chunks {
			answer := make(chan read, 1)
			select {
			case queue <- answer:
			case <-ctx.Done():
				return
			}
			go func() {
				docs, err := s.repo.ReadChunk(ctx, ref)
				answer <- read{docs, err}
			}()
		}
	}()
	i := 0
	for answer := range queue {
		ref := c.Manifest.Chunks[i]
		i++
		r := <-answer
		if r.err != nil {
			hint := ""
			if errors.Is(r.err, repo.ErrCorrupt) || errors.Is(r.err, storage.ErrNotFound) {
				hint = "; no point of this snapshot can be exported: give a --to in another snapshot's window (`rewind list`)"
			}
			return fmt.Errorf("read %s from snapshot %s: chunk %s: %w%s", c.Source, s.plan.Snapshot.ID, ref.Key, r.err, hint)
		}
		for _, doc := range r.docs {
			id, err := doc.LookupErr("_id")
			if err != nil {
				return fmt.Errorf("read %s from snapshot %s: chunk %s holds a document without _id: %w", c.Source, s.plan.Snapshot.ID, ref.Key, repo.ErrCorrupt)
			}
			if err := fn(doc, idKey(id)); err != nil {
				return err
			}
		}
		s.o.Progress.chunks.Add(1)
		s.o.Progress.read.Add(ref.Bytes)
	}
	return ctx.Err()
}
