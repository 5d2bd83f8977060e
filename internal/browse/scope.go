package browse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/storage"
)

// ErrOutside means a range holds no captured oplog.
var ErrOutside = errors.New("nothing captured in the range")

// Range is a query's range resolved against one shard's captured oplog:
// every entry with From <= ts <= To.
type Range struct {
	Shard    string
	From, To optime.Timestamp
	// Gaps are the recorded or visible gaps inside the range: entries
	// between their Before and After were lost before capture.
	Gaps []repo.Gap
}

// planned is one segment to read and the ts up to which earlier segments
// already returned entries (timelines copied by prune may overlap).
type planned struct {
	seg   repo.SegmentInfo
	after optime.Timestamp
}

// scope is a resolved query: its range and the segments that hold it.
type scope struct {
	Range
	segs []planned
}

// readLocked runs fn under a shared lock of the repository, as a restore
// reads: compaction and prune cannot delete what fn reads meanwhile. A
// lost lock cancels fn's context and the error says so.
func readLocked(ctx context.Context, r *repo.Repository, purpose string, fn func(context.Context) error) error {
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: purpose, Wait: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("lock the repository for reading: %w", err)
	}
	held, release := lock.Hold(ctx)
	defer release()
	return repo.LostError(held, fn(held))
}

// pickShard returns the shard a query reads and its history: the one
// named, else the only one with oplog.
func pickShard(ctx context.Context, r *repo.Repository, want string) (string, repo.History, error) {
	ids, err := r.Shards(ctx)
	if err != nil {
		return "", repo.History{}, fmt.Errorf("list shards: %w", err)
	}
	if want != "" {
		if !slices.Contains(ids, want) {
			return "", repo.History{}, &restore.InvalidError{Field: "shard", Msg: fmt.Sprintf("%q: the repository holds no such shard (it holds %s)", want, orNone(ids))}
		}
		h, err := r.History(ctx, want)
		return want, h, err
	}
	var with []string
	var hist repo.History
	for _, id := range ids {
		h, err := r.History(ctx, id)
		if err != nil {
			return "", repo.History{}, err
		}
		if len(h.Timelines) > 0 {
			with, hist = append(with, id), h
		}
	}
	switch len(with) {
	case 0:
		return "", repo.History{}, fmt.Errorf("%w: the repository holds no oplog yet; start `rewind agent` to capture it", ErrOutside)
	case 1:
		return with[0], hist, nil
	}
	return "", repo.History{}, &restore.InvalidError{Field: "shard", Msg: fmt.Sprintf("is needed: the repository holds the oplog of several shards (%s); choose one", strings.Join(with, ", "))}
}

func orNone(ids []string) string {
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

// resolve turns q into a range of one shard and the segments to read.
func resolve(ctx context.Context, r *repo.Repository, q Query) (scope, error) {
	shard, h, err := pickShard(ctx, r, q.Shard)
	if err != nil {
		return scope{}, err
	}
	var newest optime.Timestamp
	for _, tl := range h.Timelines {
		if tl.Last.After(newest) {
			newest = tl.Last
		}
	}
	to := newest
	if !q.To.IsZero() && !q.To.Latest && end(q.To).Before(newest) {
		to = end(q.To)
	}
	from := optime.Timestamp{T: to.T - min(to.T, uint32(DefaultSpan/time.Second))}
	switch {
	case q.From.Latest:
		from = newest
	case !q.From.IsZero():
		from = start(q.From)
	}
	sc := scope{Range: Range{Shard: shard, From: from, To: to}}
	if from.After(to) || !holds(h, from, to) {
		return sc, outsideError(shard, h, from, to)
	}
	sc.segs = plan(h, from, to)
	for _, g := range h.Gaps {
		if g.Before.Before(to) && g.After.After(from) {
			sc.Gaps = append(sc.Gaps, g)
		}
	}
	return sc, nil
}

// holds reports whether a timeline of h has entries in [from, to].
func holds(h repo.History, from, to optime.Timestamp) bool {
	for _, tl := range h.Timelines {
		if !tl.Last.Before(from) && !tl.First.After(to) {
			return true
		}
	}
	return false
}

func outsideError(shard string, h repo.History, from, to optime.Timestamp) error {
	var spans []string
	for _, tl := range h.Timelines {
		spans = append(spans, fmt.Sprintf("%s .. %s", point(tl.First), point(tl.Last)))
	}
	if from.After(to) {
		return fmt.Errorf("%w: the range starts at %s, after the newest captured entry %s of shard %s; run `rewind list` to see what it holds",
			ErrOutside, point(from), point(to), shard)
	}
	return fmt.Errorf("%w: shard %s holds no oplog between %s and %s; it holds %s; run `rewind list` to see the timelines",
		ErrOutside, shard, point(from), point(to), strings.Join(spans, ", "))
}

// point names a ts both ways a user may type it.
func point(ts optime.Timestamp) string {
	return fmt.Sprintf("%s (%s)", ts.Time().Format(time.RFC3339), ts)
}

// plan lists the segments holding entries in [from, to], in time order
// across timelines, each with the ts up to which earlier ones already
// hold entries; a segment wholly covered by earlier ones is left out.
func plan(h repo.History, from, to optime.Timestamp) []planned {
	var segs []repo.SegmentInfo
	for _, tl := range h.Timelines {
		for _, s := range tl.Segments {
			if !s.Last.Before(from) && !s.First.After(to) {
				segs = append(segs, s)
			}
		}
	}
	slices.SortStableFunc(segs, func(a, b repo.SegmentInfo) int {
		if c := optime.Compare(a.First, b.First); c != 0 {
			return c
		}
		return optime.Compare(b.Last, a.Last)
	})
	var out []planned
	after := from.Prev()
	for _, s := range segs {
		if !s.Last.After(after) {
			continue
		}
		out = append(out, planned{seg: s, after: after})
		after = s.Last
	}
	return out
}

// eachOperation reads p's segment and calls fn for every operation of its
// entries after p.after and inside rng.
func eachOperation(ctx context.Context, r *repo.Repository, p planned, rng Range, fn func(optime.Timestamp, bson.Raw, repo.Operation) error) error {
	entries, err := r.ReadSegment(ctx, p.seg)
	if err != nil {
		return err
	}
	for _, e := range entries {
		ts, err := optime.OfEntry(e) // checked by ReadSegment
		if err != nil {
			return err
		}
		if !ts.After(p.after) || ts.Before(rng.From) {
			continue
		}
		if ts.After(rng.To) {
			break
		}
		if err := repo.Operations(e, func(o repo.Operation) error { return fn(ts, e, o) }); err != nil {
			return err
		}
	}
	return nil
}

// filter is a query's selection of operations.
type filter struct {
	m    matcher
	ops  []string
	id   bson.RawValue
	seen []bool // per pattern: it selected an operation of the range
	// warnings name indexes that could not be used.
	warnings []string
}

func newFilter(q Query) *filter {
	return &filter{m: matcher{q.NS}, ops: q.Ops, id: q.ID, seen: make([]bool, len(q.NS))}
}

// namespace reports whether the patterns select an operation of kind on
// ns, and records which patterns matched something.
func (f *filter) namespace(ns, kind string) bool {
	ok, hits := f.m.match(ns, kind)
	for _, i := range hits {
		f.seen[i] = true
	}
	return ok
}

func (f *filter) kind(kind string) bool { return len(f.ops) == 0 || slices.Contains(f.ops, kind) }

// unmatched is the error for the patterns that selected nothing in rng.
func (f *filter) unmatched(rng Range) error {
	var missing []string
	for i, ok := range f.seen {
		if !ok {
			missing = append(missing, f.m.patterns[i])
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return restore.Invalid("ns", "%s matches no namespace with operations between %s and %s on shard %s; check the name, or widen the range with %s and %s",
		strings.Join(missing, ", "), point(rng.From), point(rng.To), rng.Shard, restore.Field("from"), restore.Field("to"))
}

// readIndex reads a segment's index. A missing one (an older rewind wrote
// the segment, or its writer stopped before the index) gives nil; so does
// one that cannot be used (corrupt, or from a newer rewind), adding a
// warning: the caller reads the segment itself. Other errors (no
// identity, the store failing) are returned: reading the segment would
// fail the same way.
func readIndex(ctx context.Context, r *repo.Repository, s repo.SegmentInfo, warnings *[]string) (*repo.SegmentIndex, error) {
	x, err := r.ReadIndex(ctx, s)
	switch {
	case err == nil:
		return &x, nil
	case errors.Is(err, storage.ErrNotFound):
		return nil, nil
	case errors.Is(err, repo.ErrCorrupt), errors.Is(err, repo.ErrUnsupportedVersion):
		*warnings = append(*warnings, fmt.Sprintf("%v; read its segment instead (`rewind verify --read-data` checks every index)", err))
		return nil, nil
	}
	return nil, err
}
