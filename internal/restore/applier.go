package restore

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"
	"golang.org/x/sync/errgroup"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// parallelApplier replays an oplog range with several replay.Appliers at
// once, partitioned by namespace and _id hash (partitioner): barriers go
// to main, which alone keeps the state that outlives a batch (open
// transactions, temporary collections); a run of CRUD entries is split
// among lanes, each applying its part in oplog order, and the next step
// starts when all of them are done. With one lane, main applies every
// entry as a serial replay does.
type parallelApplier struct {
	main  *replay.Applier
	lanes []*replay.Applier
	part  *partitioner
}

// newParallelApplier builds main and n lane appliers with newApplier
// (called with 0 for main, then 1..n for the lanes: each lane needs an
// Applier of its own, as an Applier is not safe for concurrent use).
func newParallelApplier(p Plan, n int, newApplier func(i int) *replay.Applier) *parallelApplier {
	pa := &parallelApplier{main: newApplier(0), part: newPartitioner(p, n)}
	if n > 1 {
		for i := range n {
			pa.lanes = append(pa.lanes, newApplier(i+1))
		}
	}
	return pa
}

// Apply applies entries, in oplog order for every document, and returns
// when all are applied; the stats are summed over the appliers. On an
// error, entries after the failing step are not applied; lanes running
// beside the failing one stop at their next write.
func (pa *parallelApplier) Apply(ctx context.Context, entries []bson.Raw) (replay.Stats, error) {
	if len(pa.lanes) == 0 {
		return pa.main.Apply(ctx, entries)
	}
	var total replay.Stats
	for _, s := range pa.part.split(entries) {
		if s.barrier != nil {
			st, err := pa.main.Apply(ctx, []bson.Raw{s.barrier})
			total.Add(st)
			if err != nil {
				return total, err
			}
			continue
		}
		stats := make([]replay.Stats, len(pa.lanes))
		g, gctx := errgroup.WithContext(ctx)
		for i, es := range s.lanes {
			if len(es) == 0 {
				continue
			}
			g.Go(func() error {
				var err error
				stats[i], err = pa.lanes[i].Apply(gctx, es)
				return err
			})
		}
		err := g.Wait()
		for _, st := range stats {
			total.Add(st)
		}
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// Pending is the number of transactions open at the end (main keeps them).
func (pa *parallelApplier) Pending() int { return pa.main.Pending() }
