// Package drill proves that a backup restores exactly: it restores a point
// into an empty scratch deployment through the one restore path
// (restore.Prepare, Prepared.Execute with Checksum), compares the restored
// collections' content checksums (internal/checksum) with the live source
// at the same point, or with the checksums recorded for that point, and
// drops everything it restored, however it ends. `rewind drill` and the
// agent's scheduled drills are thin callers of Run.
//
//	check the scratch is empty ─> choose the point (latest, random among the
//	points with a reference, a time) ─> plan ─> read the source at the point
//	(snapshot read, or a source nothing wrote to since) ─> restore with
//	checksums ─> else find the recorded reference ─> compare (and find the
//	first differing document on the source) ─> drop the scratch ─> record
package drill

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/verify"
)

// Verdicts (repo.DrillResult.Verdict).
const (
	Exact       = "exact"        // every restored collection equals the reference
	Mismatch    = "mismatch"     // a collection differs (Result names it)
	Failed      = "failed"       // the repository could not restore the point (a corrupt or missing object)
	NoReference = "no-reference" // nothing to compare with: not a pass
)

// How a point is chosen (Request.To, repo.DrillResult.Chosen).
const (
	Latest     = "latest"
	Random     = "random"
	AtSnapshot = "snapshot" // a snapshot's consistent point, right after it (the agent)
)

// NoReferenceMsg starts the problem of a drill that had nothing to compare
// with.
const NoReferenceMsg = "no reference for this point"

// Request is what to drill.
type Request struct {
	// To is latest, random, or a restore point as restore.ParseWhen reads
	// it (an RFC 3339 time or SECONDS:INCREMENT).
	To string
	// Include is the --ns patterns (db, db.*, db.coll); empty: everything.
	Include []string
	// Snapshot, with To a SECONDS:INCREMENT, says the point is that
	// snapshot's consistent point (Chosen: snapshot).
	Snapshot string
	// Record writes the result, and a reference when the drill compared a
	// snapshot's consistent point with the source and found it exact, into
	// the repository.
	Record bool
}

// Deps are what a drill works with.
type Deps struct {
	Repo    *repo.Repository
	Scratch *mongo.Client
	// Source is the live source to compare with; nil: only recorded
	// references.
	Source   *source.Source
	Parallel int
	Progress *restore.Progress
	Log      *slog.Logger
	// Now and Rand are the clock and the random source (tests inject them).
	Now  func() time.Time
	Rand *rand.Rand
	// Settle is how long a source without AtomicOplog is given before the
	// second look at its oplog (1 s when zero), as snapshots do.
	Settle time.Duration
}

func (d *Deps) defaults() {
	if d.Log == nil {
		d.Log = slog.Default()
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Rand == nil {
		d.Rand = rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 18))
	}
	if d.Settle <= 0 {
		d.Settle = time.Second
	}
	if d.Progress == nil {
		d.Progress = &restore.Progress{}
	}
}

// Result is one drill's outcome: what is recorded, and the details.
type Result struct {
	repo.DrillResult
	// Checksums are the restored collections'; Reference what they were
	// compared with.
	Checksums, Reference []checksum.Sum
	Differences          []checksum.Difference
	// Document is the first differing document, when the source could be
	// read to find it.
	Document *checksum.Document
	// Why says why the drill compared with a recorded reference, not the
	// source ("" when it compared with the source).
	Why string
}

// Passed reports whether the drill proved the point restores exactly.
func (r Result) Passed() bool { return r.Verdict == Exact }

// ErrBadRequest wraps a request Run refuses before touching anything.
var ErrBadRequest = errors.New("bad drill request")

// Run drills one point. It returns an error when it could not run (a bad
// request, a scratch that is not empty, a server or storage that fails),
// and otherwise a Result whose Verdict says what it found, recorded when
// req.Record. The scratch deployment's databases are dropped when it ends,
// also on failure or cancellation.
func Run(ctx context.Context, d Deps, req Request) (res Result, err error) {
	d.defaults()
	clock := newClock(d.Now)
	res.Started, res.Chosen = clock.start, chosen(req)
	snapshotEnd := false // the point is the plan's snapshot's consistent point
	if d.Source != nil {
		if err := d.Source.CheckRepository(d.Repo.Config()); err != nil {
			return res, fmt.Errorf("%w: --source: %w", ErrBadRequest, err)
		}
	}
	if err := verify.CheckScratch(ctx, d.Scratch); err != nil {
		return res, fmt.Errorf("drill: %w; point --scratch at an empty deployment: the drill drops everything in it when done", err)
	}
	defer func() {
		clock.enter("cleanup")
		if cerr := dropScratch(ctx, d.Scratch); cerr != nil {
			err = errors.Join(err, cerr)
		}
		clock.enter("")
		res.Phases, res.Seconds = clock.phases(), clock.total()
		if err == nil && req.Record {
			err = record(ctx, d, req, &res, snapshotEnd)
		}
	}()
	clock.enter("plan")
	when, ok, err := choose(ctx, d, req, &res)
	if err != nil || !ok {
		return res, err
	}
	p, err := restore.Prepare(ctx, d.Repo, restore.Request{To: when, Include: req.Include, Checksum: true, Parallel: d.Parallel})
	if err != nil {
		return res, fmt.Errorf("drill: %w", err)
	}
	defer p.Release()
	res.Shard, res.Point, res.Snapshot = p.Plan.Shard, p.Plan.Target, p.Plan.Snapshot.ID
	snapshotEnd = p.Plan.Target == p.Plan.Snapshot.End
	clock.enter("source")
	live, err := readSource(ctx, d, p.Plan)
	if err != nil {
		return res, err
	}
	res.Why = live.why
	clock.enter("restore")
	t, err := restore.Use(ctx, d.Scratch)
	if err != nil {
		return res, fmt.Errorf("drill: %w", err)
	}
	rep, err := p.Execute(ctx, t, restore.Options{Progress: d.Progress, Log: d.Log})
	if broken(err) {
		// The restore's advice on the partial target is not the drill's:
		// the scratch is dropped below.
		msg, _, _ := strings.Cut(err.Error(), "; the restore had begun writing")
		res.Verdict, res.Problem = Failed, "the repository cannot restore this point: "+msg
		return res, nil
	}
	if err != nil {
		return res, fmt.Errorf("drill: %w", err)
	}
	clock.restore(rep)
	res.Checksums = rep.Checksums
	summarize(&res, rep)
	clock.enter("compare")
	return res, compare(ctx, d, p.Plan, req, live, rep, &res)
}

// broken reports whether a restore failed because the repository cannot
// give the point back: an object is corrupt or missing.
func broken(err error) bool {
	return err != nil && (errors.Is(err, repo.ErrCorrupt) || errors.Is(err, storage.ErrNotFound))
}

func chosen(req Request) string {
	switch {
	case req.To == Latest || req.To == Random:
		return req.To
	case req.Snapshot != "":
		return AtSnapshot
	}
	return req.To
}

// summarize fills the restore's size and RTO.
func summarize(res *Result, rep restore.Report) {
	res.Collections = len(rep.Checksums)
	for _, s := range rep.Checksums {
		res.Documents += s.Count
		res.Bytes += s.Bytes
	}
	res.RestoreSeconds = rep.Duration.Seconds()
	if res.Bytes > 0 {
		res.RTO = res.RestoreSeconds / (float64(res.Bytes) / 1e9)
	}
}

// dropScratch drops every user database of the scratch deployment, with a
// context of its own: it runs after a failure or a cancellation too.
func dropScratch(ctx context.Context, client *mongo.Client) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	dbs, err := client.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return fmt.Errorf("drill: clean the scratch deployment: %w", err)
	}
	for _, db := range dbs {
		if db == "admin" || db == "config" || db == "local" {
			continue
		}
		if err := client.Database(db).Drop(ctx); err != nil {
			return fmt.Errorf("drill: drop database %s of the scratch deployment: %w", db, err)
		}
	}
	return nil
}
