package restore

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"golang.org/x/sync/errgroup"
)

// DecodeRate is the rate, in plaintext bytes per second, at which the
// load reads snapshot chunks (read, checksum, decrypt, decompress, split)
// that Estimate assumes. It is a constant, not a measurement per run: the
// low end of BenchmarkDecodeAhead on the 2-core development machines while
// other jobs ran (185 MB/s, docs/PERFORMANCE.md "Restore's read-ahead";
// 555 MB/s quiet). Measuring it at every dry run would cost CPU for a
// figure that rarely decides: every target measured inserts 1-2 orders of
// magnitude slower. Reading from a remote store over a slow link can be
// slower still; Estimate does not see the link.
const DecodeRate = 185e6

// IndexRate is the rate, in index keys per second (documents × secondary
// indexes), that Estimate assumes for building the indexes after the load.
// A rough documented figure, not measured per target: MongoDB's hybrid
// builds scan and sort at about this order on small machines, and the
// benchmark's data has no secondary index to check it against.
const IndexRate = 100_000

// Probe sizes: enough writes that a per-call cost does not dominate, few
// enough that the probe takes well under a few seconds on a slow target.
const (
	probeDocs        = 400             // documents inserted by the load probe
	probeBatch       = 50              // documents per insertMany of the probe
	probeUpserts     = 100             // replace-by-_id upserts by the replay probe, at most
	probeUpsertBatch = 10              // upserts per bulkWrite of the probe
	probeBudget      = 3 * time.Second // the replay probe stops after this
	probeCleanup     = 30 * time.Second
	minDocBytes      = 64 // smallest probe document
	maxDocBytes      = 16 << 20
)

// Estimate is how long a restore of a plan should take on one target, and
// the parts it is made of: Total = Setup + max(Decode, Insert) + Replay +
// Indexes. Rates are in bytes, documents or entries per second; a rate of
// 0 was not measured (nothing to measure it on).
type Estimate struct {
	Total time.Duration
	// Load is max(Decode, Insert): readers decode ahead of the inserters.
	Load    time.Duration
	Decode  time.Duration // Plan.ChunkBytes at DecodeRate
	Insert  time.Duration // the plan's documents at InsertRate (twice for a staged plan: staging, then the copy)
	Replay  time.Duration // Plan.Entries at ReplayRate
	Indexes time.Duration // documents × secondary indexes at IndexRate
	Setup   time.Duration // per collection: create it and count it, at the probe's measured create time

	DocBytes   int64   // the plan's average document, the probe's document size
	InsertRate float64 // bytes/s of unordered insertMany, probed with Parallel writers
	ReplayRate float64 // entries/s of ordered replace-by-_id upserts, probed; 0: no entries to replay
	CreateTime time.Duration
	IndexKeys  int64
}

// Estimate probes the target's write rate and estimates the restore of p
// (see Estimate the type): it creates a collection in a database under
// StagingPrefix (which browse and restores ignore), inserts a few hundred
// documents of the plan's average size with parallel writers as the load
// does, upserts some by _id as the replay does, and drops the database
// afterwards, also when ctx is cancelled (with a cleanup deadline of its
// own). Errors: the target refused a write (a read-only user, for one).
func (p *Prepared) Estimate(ctx context.Context, t *Target) (Estimate, error) {
	ctx, done := p.scope(ctx)
	defer done()
	return EstimatePlan(ctx, t.Client, p.Plan, p.Request.Parallel)
}

// EstimatePlan is Estimate for a plan and the number of parallel writers
// of the load (DefaultParallel when <= 0).
func EstimatePlan(ctx context.Context, client *mongo.Client, p Plan, parallel int) (Estimate, error) {
	if parallel <= 0 {
		parallel = DefaultParallel
	}
	e := Estimate{DocBytes: avgDocBytes(p)}
	db := client.Database(stagingDB(newStagingRun(time.Now()), "probe"))
	defer func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeCleanup)
		defer cancel()
		_ = db.Drop(cctx) // a leftover is dropped by the next staged run (StaleStaging)
	}()
	if err := e.probe(ctx, db.Collection("write_probe"), p, parallel); err != nil {
		return Estimate{}, fmt.Errorf("probe the target's write rate: %w", err)
	}
	e.compute(p)
	return e, nil
}

// probe measures the create, insert and upsert rates on coll.
func (e *Estimate) probe(ctx context.Context, coll *mongo.Collection, p Plan, parallel int) error {
	t0 := time.Now()
	if err := coll.Database().CreateCollection(ctx, coll.Name()); err != nil {
		return err
	}
	e.CreateTime = time.Since(t0)
	if probeHook != nil {
		probeHook()
	}
	docs := make([]any, probeDocs)
	for i := range docs {
		docs[i] = probeDoc(i, e.DocBytes)
	}
	t0 = time.Now()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(parallel)
	for i := 0; i < len(docs); i += probeBatch {
		batch := docs[i:min(i+probeBatch, len(docs))]
		g.Go(func() error {
			_, err := coll.InsertMany(gctx, batch, options.InsertMany().SetOrdered(false))
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	e.InsertRate = float64(probeDocs*e.DocBytes) / max(time.Since(t0).Seconds(), 1e-6)
	if p.Entries > 0 {
		return e.probeReplay(ctx, coll)
	}
	return nil
}

// probeReplay upserts probe documents by _id in ordered batches, as the
// replay writes an insert entry, until probeUpserts or probeBudget.
func (e *Estimate) probeReplay(ctx context.Context, coll *mongo.Collection) error {
	t0 := time.Now()
	n := 0
	for n < probeUpserts && (n == 0 || time.Since(t0) < probeBudget) {
		models := make([]mongo.WriteModel, probeUpsertBatch)
		for i := range models {
			models[i] = mongo.NewReplaceOneModel().SetFilter(bson.D{{Key: "_id", Value: n + i}}).
				SetReplacement(probeDoc(n+i, e.DocBytes)).SetUpsert(true)
		}
		if _, err := coll.BulkWrite(ctx, models, options.BulkWrite().SetOrdered(true)); err != nil {
			return err
		}
		n += len(models)
	}
	e.ReplayRate = float64(n) / max(time.Since(t0).Seconds(), 1e-6)
	return nil
}

// probeHook, when set (by tests), runs once the probe's collection exists.
var probeHook func()

// probeDoc is document i of about size bytes: an int _id and a string.
func probeDoc(i int, size int64) bson.Raw {
	const overhead = 32 // _id, field names, lengths
	pad := strings.Repeat("x", int(max(size-overhead, 1)))
	doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "v", Value: pad}}) // ints and strings always marshal
	return doc
}

// avgDocBytes is the plan's average document size, within sane bounds.
func avgDocBytes(p Plan) int64 {
	if p.Documents <= 0 || p.ChunkBytes <= 0 {
		return 1024
	}
	return min(max(p.ChunkBytes/p.Documents, minDocBytes), maxDocBytes)
}

// compute fills the parts and the total from the plan and the rates.
func (e *Estimate) compute(p Plan) {
	e.Decode = seconds(float64(p.ChunkBytes) / DecodeRate)
	inserts := float64(p.ChunkBytes)
	if p.Staged() {
		inserts *= 2
	}
	if e.InsertRate > 0 {
		e.Insert = seconds(inserts / e.InsertRate)
	}
	e.Load = max(e.Decode, e.Insert)
	if e.ReplayRate > 0 {
		e.Replay = seconds(float64(p.Entries) / e.ReplayRate)
	}
	for _, c := range p.Collections {
		e.IndexKeys += c.Manifest.Count * int64(max(len(c.Manifest.Indexes)-1, 0))
	}
	e.Indexes = seconds(float64(e.IndexKeys) / IndexRate)
	e.Setup = time.Duration(len(p.Collections)+len(p.Late)) * e.CreateTime
	e.Total = e.Setup + e.Load + e.Replay + e.Indexes
}

// seconds is s seconds, 0 for anything not a positive finite number.
func seconds(s float64) time.Duration {
	if !(s > 0) || math.IsInf(s, 1) {
		return 0
	}
	return time.Duration(s * float64(time.Second))
}

// String is the estimate and its parts on one line:
// "about 5.3s: load 4.7s (insert at 6.8 MB/s probed, decode at 185 MB/s), ...".
func (e Estimate) String() string {
	r := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	replay := "no oplog entries"
	if e.ReplayRate > 0 {
		replay = fmt.Sprintf("%.0f entries/s probed", e.ReplayRate)
	}
	return fmt.Sprintf("about %s: load %s (insert %s at %.1f MB/s probed, decode %s at %.0f MB/s), replay %s (%s), indexes %s (%d keys at %d/s), setup %s",
		r(e.Total), r(e.Load), r(e.Insert), e.InsertRate/1e6, r(e.Decode), DecodeRate/1e6, r(e.Replay), replay,
		r(e.Indexes), e.IndexKeys, IndexRate, r(e.Setup))
}

// etaAfter is how long a step must have run before its ETA is shown: the
// first seconds hold the collection creates and the first batches.
const etaAfter = 3 * time.Second

// ETA is the time left in the current step, load or replay, from its rate
// so far: the step's elapsed time × what remains / what is done (chunk
// plaintext bytes for the load, oplog entries read for the replay). ok is
// false in other steps, before etaAfter of the step, and before anything
// of it is done.
func (p *Progress) ETA() (left time.Duration, step string, ok bool) {
	if p == nil {
		return 0, "", false
	}
	step = p.Phase()
	var done, total int64
	switch step {
	case "load":
		done, total = p.bytes.Load(), p.totalBytes.Load()
	case "replay":
		done, total = p.entries.Load(), p.totalEntries.Load()
	default:
		return 0, step, false
	}
	left, ok = etaOf(time.Since(time.Unix(0, p.phaseStarted.Load())), done, total)
	return left, step, ok
}

// etaOf is the time left when done of total took elapsed.
func etaOf(elapsed time.Duration, done, total int64) (time.Duration, bool) {
	if elapsed < etaAfter || done <= 0 || total <= 0 {
		return 0, false
	}
	rest := max(total-done, 0)
	return seconds(elapsed.Seconds() * float64(rest) / float64(done)), true
}
