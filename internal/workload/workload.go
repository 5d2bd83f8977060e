// Package workload writes a deterministic mix of inserts, updates
// (operator updates and whole-document replacements) and deletes across
// several databases and collections, with odd names and every BSON type the
// server accepts. The same Config (seed included) always produces the same
// operations, whatever the timing, so two runs on fresh servers end in the
// same state; internal/oracle checks that.
package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Config says what to write. Zero fields take the defaults noted.
type Config struct {
	Seed        uint64
	Prefix      string        // prefix of every database name (keep it short: names max 63 bytes)
	Databases   int           // number of databases (default 3)
	Collections int           // collections per database (default 4)
	Ops         int           // stop after this many operations (0: no limit)
	Duration    time.Duration // stop after this long, at a batch boundary (0: no limit)
	Rate        float64       // operations per second (0: as fast as possible)
	BatchSize   int           // operations between two OnBatch calls (default 20)
	Kinds       Kinds         // value kinds to write (default AllKinds)
	LargeEvery  int           // every Nth insert or replace carries a large value (0: never)
	LargeSize   int           // size of that value in bytes (default 900 KiB: documents near 1 MiB)
	KeepData    bool          // don't drop the databases first (they must not exist: the generator assumes empty collections)
}

func (c Config) withDefaults() Config {
	if c.Databases <= 0 {
		c.Databases = 3
	}
	if c.Collections <= 0 {
		c.Collections = 4
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 20
	}
	if c.Kinds == 0 {
		c.Kinds = AllKinds
	}
	if c.LargeSize <= 0 {
		c.LargeSize = 900 << 10
	}
	return c
}

// Batch describes the state after an acknowledged batch of operations.
type Batch struct {
	N      int // batch number, from 1
	Ops    int // operations acknowledged so far
	Writes int // of those, writes that changed a document (one oplog entry each)
	// OperationTime is the server's operationTime after the batch's last
	// write (zero when the server does not report one, like FerretDB).
	OperationTime optime.Timestamp
}

// Stats counts what a Run did.
type Stats struct {
	Ops, Inserts, Updates, Replaces, Deletes int
	Batches                                  int
	Bytes                                    int64 // BSON bytes of inserted and replacement documents
	Elapsed                                  time.Duration
}

// Writes is the number of writes that changed a document: every operation
// the generator makes changes exactly one document.
func (s Stats) Writes() int { return s.Inserts + s.Updates + s.Replaces + s.Deletes }

// OnBatch is called after every acknowledged batch, with no write in flight;
// an error stops the run.
type OnBatch func(ctx context.Context, b Batch) error

// ErrNoLimit is returned when a Config has neither Ops nor Duration.
var ErrNoLimit = errors.New("workload has no end: set Ops or Duration")

// Run drops the Config's databases (unless KeepData), creates its collections
// and indexes, then writes until Ops or Duration is reached or ctx ends.
// Writes are sequential, one document per operation.
func Run(ctx context.Context, client *mongo.Client, cfg Config, onBatch OnBatch) (Stats, error) {
	cfg = cfg.withDefaults()
	if cfg.Ops <= 0 && cfg.Duration <= 0 {
		return Stats{}, ErrNoLimit
	}
	r := &runner{cfg: cfg, client: client, onBatch: onBatch}
	r.gen = gen{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), kinds: cfg.Kinds}
	if err := r.setup(ctx); err != nil {
		return Stats{}, err
	}
	err := r.loop(ctx)
	return r.stats, err
}

type runner struct {
	cfg     Config
	client  *mongo.Client
	onBatch OnBatch
	gen     gen
	colls   []*collState
	stats   Stats
}

func (r *runner) setup(ctx context.Context) error {
	if !r.cfg.KeepData {
		for _, db := range Databases(r.cfg) {
			if err := r.client.Database(db).Drop(ctx); err != nil {
				return fmt.Errorf("drop database %s: %w", db, err)
			}
		}
	}
	for i, ns := range Namespaces(r.cfg) {
		coll := r.client.Database(ns.DB).Collection(ns.Coll)
		if err := r.client.Database(ns.DB).CreateCollection(ctx, ns.Coll); err != nil {
			return fmt.Errorf("create collection %s: %w", ns, err)
		}
		if err := createIndexes(ctx, coll, i); err != nil {
			return fmt.Errorf("create indexes on %s: %w", ns, err)
		}
		r.colls = append(r.colls, newCollState(ns, coll, i, r.cfg.Seed))
	}
	return nil
}

// createIndexes gives some collections secondary indexes, so that index
// specs are part of the state a restore must bring back.
func createIndexes(ctx context.Context, coll *mongo.Collection, i int) error {
	var models []mongo.IndexModel
	switch i % 3 {
	case 0:
		models = append(models, mongo.IndexModel{Keys: bson.D{{Key: "n", Value: 1}}})
	case 1:
		models = append(models, mongo.IndexModel{
			Keys:    bson.D{{Key: "u", Value: 1}, {Key: "f0", Value: -1}},
			Options: options.Index().SetName("by_u_f0"),
		})
	}
	if len(models) == 0 {
		return nil
	}
	_, err := coll.Indexes().CreateMany(ctx, models)
	return err
}

func (r *runner) loop(ctx context.Context) error {
	sess, err := r.client.StartSession()
	if err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	defer sess.EndSession(context.WithoutCancel(ctx))
	sctx := mongo.NewSessionContext(ctx, sess)

	start := time.Now()
	defer func() { r.stats.Elapsed = time.Since(start) }()
	for {
		if r.cfg.Ops > 0 && r.stats.Ops >= r.cfg.Ops {
			return nil
		}
		if r.cfg.Duration > 0 && time.Since(start) >= r.cfg.Duration {
			return nil
		}
		n := r.cfg.BatchSize
		if r.cfg.Ops > 0 {
			n = min(n, r.cfg.Ops-r.stats.Ops)
		}
		for i := 0; i < n; i++ {
			if err := r.pace(ctx, start); err != nil {
				return err
			}
			if err := r.step(sctx); err != nil {
				return err
			}
		}
		r.stats.Batches++
		if err := r.callBatch(ctx, sess); err != nil {
			return err
		}
	}
}

// pace sleeps so that operations start no faster than Rate per second.
func (r *runner) pace(ctx context.Context, start time.Time) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if r.cfg.Rate <= 0 {
		return nil
	}
	due := start.Add(time.Duration(float64(r.stats.Ops) / r.cfg.Rate * float64(time.Second)))
	if wait := time.Until(due); wait > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return nil
}

func (r *runner) callBatch(ctx context.Context, sess *mongo.Session) error {
	if r.onBatch == nil {
		return nil
	}
	b := Batch{N: r.stats.Batches, Ops: r.stats.Ops, Writes: r.stats.Writes()}
	if ot := sess.OperationTime(); ot != nil {
		b.OperationTime = optime.Timestamp{T: ot.T, I: ot.I}
	}
	if err := r.onBatch(ctx, b); err != nil {
		return fmt.Errorf("after batch %d: %w", b.N, err)
	}
	return nil
}
