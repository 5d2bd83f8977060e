package drill

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// live is the source read at the drill's point, when it could be.
type live struct {
	ok     bool
	sums   []checksum.Sum
	reader checksum.Reader // reads the source at the point (to find a document)
	quiet  bool            // read now, valid while nothing writes to the source
	why    string          // why the source was not read (when !ok)
}

// readSource reads the source's checksums at the plan's point, before the
// restore (a snapshot read must happen inside the server's history
// window). A source with snapshot reads is read at the point; any other
// only when nothing was written to it after the point (its newest oplog
// entry is at or before it, before and after the read).
func readSource(ctx context.Context, d Deps, p restore.Plan) (live, error) {
	src := d.Source
	if src == nil {
		return live{why: "no source to compare with (--source)"}, nil
	}
	names := planNames(p)
	if src.Caps.SnapshotReads {
		at, err := src.NewestEntryAtOrBefore(ctx, p.Target)
		if err != nil {
			return live{}, fmt.Errorf("drill: %w", err)
		}
		rd, err := checksum.At(src, at)
		if err != nil {
			return live{}, err
		}
		sums, err := rd.Namespaces(ctx, names)
		if errors.Is(err, checksum.ErrSnapshotTooOld) {
			return live{why: "the source's snapshot history (minSnapshotHistoryWindowInSeconds) no longer reaches the point"}, nil
		}
		if err != nil {
			return live{}, fmt.Errorf("drill: read the source at %s: %w", at, err)
		}
		return live{ok: true, sums: sums, reader: rd}, nil
	}
	written, err := writtenAfter(ctx, d, p)
	if err != nil || written != "" {
		return live{why: written}, err
	}
	now, err := checksum.List(ctx, src.Client, p.Mapper.Match)
	if err != nil {
		return live{}, fmt.Errorf("drill: list the source's collections: %w", err)
	}
	rd := checksum.Reader{Client: src.Client}
	sums, err := rd.Namespaces(ctx, union(names, now))
	if err != nil {
		return live{}, fmt.Errorf("drill: read the source: %w", err)
	}
	if written, err = writtenAfter(ctx, d, p); err != nil || written != "" {
		return live{why: written}, err
	}
	return live{ok: true, sums: sums, reader: rd, quiet: true}, nil
}

// writtenAfter says how the source was written to after the plan's point,
// "" when it was not. A source whose oplog entry may follow its data
// change (no AtomicOplog: FerretDB) is given the settle delay first.
func writtenAfter(ctx context.Context, d Deps, p restore.Plan) (string, error) {
	src := d.Source
	if !src.Caps.AtomicOplog {
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(d.Settle):
		}
	}
	newest, err := src.NewestEntry(ctx)
	if err != nil {
		return "", fmt.Errorf("drill: %w", err)
	}
	if newest.After(p.Target) {
		return fmt.Sprintf("the source (%s %s) cannot read a past point and was written to after it (its newest oplog entry is %s, the point %s)",
			src.Flavor, src.Version, newest, p.Target), nil
	}
	return "", nil
}

// planNames are the collections the restore writes, by their (source and
// target: a drill renames nothing) names.
func planNames(p restore.Plan) []string {
	var out []string
	for _, c := range p.Collections {
		out = append(out, c.Target.String())
	}
	for _, l := range p.Late {
		if !l.View {
			out = append(out, l.Target.String())
		}
	}
	return union(out, nil)
}

func union(a, b []string) []string {
	out := append(slices.Clone(a), b...)
	slices.Sort(out)
	return slices.Compact(out)
}

// compare checks the restored checksums against the source read at the
// point, else against the recorded reference of the point, and sets the
// verdict.
func compare(ctx context.Context, d Deps, p restore.Plan, req Request, src live, rep restore.Report, res *Result) error {
	if src.ok {
		res.Against, res.Reference = "source", src.sums
	} else {
		ref, ok, err := findReference(ctx, d.Repo, p, rep.LastApplied, req.Include)
		if err != nil {
			return fmt.Errorf("drill: %w", err)
		}
		if !ok {
			res.Verdict = NoReference
			res.Problem = fmt.Sprintf("%s: %s, and no checksums were recorded for %s (the agent records them right after each snapshot while it can read the source there)",
				NoReferenceMsg, src.why, p.Target)
			return nil
		}
		res.Against = "reference"
		for _, s := range ref.Sums {
			if db, coll, _ := strings.Cut(s.Namespace, "."); p.Mapper.Match(db, coll) {
				res.Reference = append(res.Reference, checksum.Sum(s))
			}
		}
	}
	res.Differences = checksum.Compare(res.Reference, res.Checksums)
	if len(res.Differences) == 0 {
		res.Verdict = Exact
		return nil
	}
	res.Verdict = Mismatch
	first := res.Differences[0]
	res.Problem = first.String()
	if !src.ok {
		res.Problem += "; the source cannot be read at this point, so the document is not named: restore the point with --checksum and compare the collection by hand"
		return nil
	}
	doc, found, err := checksum.FirstDifference(ctx, src.reader, checksum.Reader{Client: d.Scratch}, first.Namespace)
	if err == nil && src.quiet {
		var written string
		if written, err = writtenAfter(ctx, d, p); written != "" {
			err = errors.New(written)
		}
	}
	if err != nil {
		d.Log.Warn("drill: the first differing document could not be found", "namespace", first.Namespace, "err", err)
		return nil
	}
	if found {
		res.Document = &doc
		res.Problem = doc.String()
	}
	return nil
}

// record writes the result, and the reference of a snapshot's consistent
// point that the source confirmed.
func record(ctx context.Context, d Deps, req Request, res *Result, snapshotEnd bool) error {
	if res.Shard == "" {
		return nil // nothing restorable at all: no shard to record under
	}
	stored, err := d.Repo.WriteDrillResult(ctx, res.DrillResult)
	if err != nil {
		return fmt.Errorf("drill: record the result: %w", err)
	}
	res.ID = stored.ID
	if res.Verdict != Exact || res.Against != "source" || !snapshotEnd {
		return nil
	}
	ref := repo.DrillReference{Shard: res.Shard, Point: res.Point, Snapshot: res.Snapshot, Recorded: d.Now(),
		Include: sortedCopy(req.Include)}
	for _, s := range res.Reference {
		ref.Sums = append(ref.Sums, repo.DrillSum(s))
	}
	if err := d.Repo.WriteDrillReference(ctx, ref); err != nil {
		return fmt.Errorf("drill: record the reference checksums: %w", err)
	}
	return nil
}
