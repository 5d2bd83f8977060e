package export

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// DefaultParallel is how many snapshot chunks are read at once.
const DefaultParallel = 4

// Options configure Compute and Prepared.Write.
type Options struct {
	// Stdout is where an Out of Stdout writes: the CLI's standard output,
	// an HTTP response. Required then.
	Stdout      io.Writer
	Parallel    int    // snapshot chunks read at once (DefaultParallel when 0)
	ToolVersion string // written in an archive's header, e.g. "rewind v1.2.0"
	Progress    *Progress
	Log         *slog.Logger
}

func (o *Options) defaults() {
	if o.Parallel <= 0 {
		o.Parallel = DefaultParallel
	}
	if o.Progress == nil {
		o.Progress = &Progress{}
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.ToolVersion == "" {
		o.ToolVersion = "rewind"
	}
}

// Prepared is an export planned under a shared lock of the repository
// (restore.Prepare: the restore's own planner), held until Release.
type Prepared struct {
	Request Request
	Plan    restore.Plan // resolved

	restore *restore.Prepared
	repo    *repo.Repository
}

// ErrCluster refuses an export from a sharded cluster's repository: its
// state is every shard's oplog merged, which only a restore computes yet.
var ErrCluster = errors.New("exporting a sharded cluster is not built yet: restore it (rewind restore --to ... --target ...) and dump that")

// Prepare plans the export as a restore of the same point and namespaces
// would be planned (the same errors: a point outside every window, a --ns
// that matches nothing), holding the repository's shared lock until
// Release. req should have been validated. A stream of one collection
// (bson or jsonl to Stdout) is refused here when the snapshot already holds
// more than one of the selected collections and views (and when writing
// begins, if the state at the restore point does).
func Prepare(ctx context.Context, r *repo.Repository, req Request) (*Prepared, error) {
	rp, err := restore.Prepare(ctx, r, restore.Request{To: req.To, Include: req.Include})
	if err != nil {
		return nil, err
	}
	if len(rp.Plan.Parts) > 0 {
		rp.Release()
		return nil, fmt.Errorf("plan export: %w", ErrCluster)
	}
	p := &Prepared{Request: req, Plan: rp.Plan, restore: rp, repo: r}
	if req.Out == Stdout && req.Format != Archive && len(p.Plan.Collections)+len(p.Plan.Views) > 1 {
		var names []string
		for _, c := range p.Plan.Collections {
			names = append(names, c.Source.String())
		}
		for _, v := range p.Plan.Views {
			names = append(names, v.Source.String()+" (view)")
		}
		if err := oneCollection(req.Format, names); err != nil {
			rp.Release()
			return nil, fmt.Errorf("plan export: %w", err)
		}
	}
	return p, nil
}

// oneCollection refuses a stream of bson or jsonl documents that would mix
// namespaces (names lists them; a view's name says so).
func oneCollection(f Format, names []string) error {
	if len(names) == 1 && !strings.HasSuffix(names[0], " (view)") {
		return nil
	}
	holds := "no collection"
	if len(names) > 0 {
		holds = strings.Join(names, ", ")
	}
	return invalid("out", "-: --format %s to standard output writes the documents of one collection, and this export holds %s; select one collection with --ns db.coll, use --format archive, or give a directory", f, holds)
}

// Release stops refreshing the lock and removes it.
func (p *Prepared) Release() { p.restore.Release() }

// Report is what an export wrote.
type Report struct {
	Snapshot   string
	Target     optime.Timestamp // the restore point
	Entries    int64            // oplog entries replayed
	Replay     replay.Stats
	Held       int64 // documents held in memory at the end: those the range wrote
	Documents  int64 // documents written
	Bytes      int64 // their BSON bytes
	Read       int64 // snapshot chunk plaintext bytes read (both passes)
	Namespaces []Namespace
	Out        string // where it went: a path, or "-"
	Duration   time.Duration
}

// Write computes the state at the plan's restore point (Compute) and writes
// it in the request's format to Out. A directory or file is written under
// a temporary name beside Out and renamed into place when complete, so a
// failed or interrupted export leaves nothing; a stream (Stdout) is cut
// short instead, which mongorestore reports as an unfinished archive. A
// lost lock stops it and says so.
func (p *Prepared) Write(ctx context.Context, o Options) (Report, error) {
	ctx, done := p.restore.Scope(ctx)
	defer done()
	rep, err := p.write(ctx, o)
	return rep, repo.LostError(ctx, err)
}

func (p *Prepared) write(ctx context.Context, o Options) (Report, error) {
	o.defaults()
	start := time.Now()
	rep := Report{Snapshot: p.Plan.Snapshot.ID, Target: p.Plan.Target, Out: p.Request.Out}
	st, err := Compute(ctx, p.repo, p.Plan, o)
	if err != nil {
		return rep, err
	}
	rep.Entries, rep.Replay, rep.Held, rep.Namespaces = st.Entries, st.Replay, st.Held, st.Namespaces
	o.Progress.setPhase("write")
	for _, n := range st.Namespaces {
		o.Progress.totalDocs.Add(n.Count)
	}
	out, err := openSink(p.Request, o)
	if err != nil {
		return rep, err
	}
	if err := writeAll(ctx, st, out, o.Progress); err != nil {
		out.abort()
		return rep, err
	}
	if err := out.commit(); err != nil {
		return rep, err
	}
	rep.Documents, rep.Bytes, rep.Read = o.Progress.docs.Load(), o.Progress.written.Load(), o.Progress.read.Load()
	rep.Duration = time.Since(start)
	o.Progress.setPhase("done")
	return rep, nil
}

// writeAll writes every namespace of the state to the sink.
func writeAll(ctx context.Context, st *State, out sink, pr *Progress) error {
	if err := out.begin(st.Namespaces); err != nil {
		return err
	}
	for _, n := range st.Namespaces {
		if err := out.start(n); err != nil {
			return err
		}
		err := st.Each(ctx, n, func(doc bson.Raw) error {
			pr.docs.Add(1)
			pr.written.Add(int64(len(doc)))
			return out.doc(doc)
		})
		if err != nil {
			return err
		}
		if err := out.end(n); err != nil {
			return err
		}
	}
	return nil
}
