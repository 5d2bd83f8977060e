package browse

import (
	"context"
	"fmt"
	"slices"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// Row is one line of a summary: how many operations of one kind one
// namespace had in one second.
type Row struct {
	Second uint32 // ts seconds (Unix time)
	NS     string
	Kind   string
	Count  int64
}

func (r Row) key() repo.OpCount { return repo.OpCount{Second: r.Second, NS: r.NS, Kind: r.Kind} }

// RowJSON is a row's JSON form, one line of `rewind oplog --summary
// --json` and of the API.
type RowJSON struct {
	Time  string `json:"time"` // the second, RFC 3339
	T     uint32 `json:"t"`    // the same second as ts seconds
	NS    string `json:"ns"`
	Op    string `json:"op"`
	Count int64  `json:"count"`
}

// JSON returns the row's JSON form.
func (r Row) JSON() RowJSON {
	return RowJSON{Time: time.Unix(int64(r.Second), 0).UTC().Format(time.RFC3339), T: r.Second, NS: r.NS, Op: r.Kind, Count: r.Count}
}

// Summary counts the operations of a range per second, namespace and kind.
type Summary struct {
	Range
	Rows       []Row // sorted by second, namespace, kind
	Operations int64 // the sum of the rows' counts
	Segments   int   // segments holding the range
	Indexed    int   // of those, counted from their index alone
	// ReadWhole are the segments read and counted entry by entry: those
	// without a usable index, those overlapping an earlier one (a copy
	// prune made), those with entries in a second the range holds only in
	// part (a SECONDS:INCREMENT bound), and every one when the query
	// selects an _id (the index has none).
	ReadWhole int
	Warnings  []string // indexes that could not be used
}

// Summarize counts the operations q selects in its range, per second,
// namespace and kind: a deleteMany of 5,000 documents is one row of 5,000
// deletes at its second. It reads the segments' indexes, not the segments
// (see Summary.ReadWhole for when it must), so a summary of a day of
// oplog decompresses almost nothing.
func Summarize(ctx context.Context, r *repo.Repository, q Query) (Summary, error) {
	var sum Summary
	err := readLocked(ctx, r, "oplog summary", func(ctx context.Context) error {
		sc, err := resolve(ctx, r, q)
		sum.Range, sum.Segments = sc.Range, len(sc.segs)
		if err != nil {
			return err
		}
		f := newFilter(q)
		var rows []Row // per segment in order, each segment's sorted
		for _, p := range sc.segs {
			var ok bool
			if rows, ok, err = f.countIndex(ctx, r, p, sc.Range, rows); err != nil {
				return err
			} else if ok {
				sum.Indexed++
				continue
			}
			sum.ReadWhole++
			counts := map[Row]int64{} // keyed with Count 0
			err := eachOperation(ctx, r, p, sc.Range, func(ts optime.Timestamp, e bson.Raw, o repo.Operation) error {
				if f.namespace(o.NS, o.Kind) && f.kind(o.Kind) && (f.id.Type == 0 || SameID(newOp(ts, e, o).ID, f.id)) {
					counts[Row{Second: ts.T, NS: o.NS, Kind: o.Kind}]++
				}
				return nil
			})
			if err != nil {
				return err
			}
			for k, n := range counts {
				k.Count = n
				rows = append(rows, k)
			}
		}
		sum.Rows, sum.Operations = merged(rows)
		sum.Warnings = f.warnings
		return f.unmatched(sc.Range)
	})
	if err != nil {
		return sum, fmt.Errorf("summarize operations: %w", err)
	}
	return sum, nil
}

// countIndex appends p's counts from its index to rows and reports whether
// it could: not without an _id to select, a usable index, a segment that
// starts after what earlier ones hold, and whole seconds (where the range
// cuts a second this segment holds entries of on both sides, counting
// needs the entries' increments).
func (f *filter) countIndex(ctx context.Context, r *repo.Repository, p planned, rng Range, rows []Row) ([]Row, bool, error) {
	if f.id.Type != 0 || !p.seg.First.After(p.after) {
		return rows, false, nil
	}
	x, err := readIndex(ctx, r, p.seg, &f.warnings)
	if err != nil || x == nil {
		return rows, false, err
	}
	for _, c := range x.Counts {
		cut := c.Second == rng.From.T && p.seg.First.Before(rng.From) || c.Second == rng.To.T && p.seg.Last.After(rng.To)
		if cut && c.Second >= rng.From.T && c.Second <= rng.To.T {
			return rows, false, nil
		}
	}
	// Namespaces repeat from count to count: decide each once.
	selected := map[[2]string]bool{}
	for _, c := range x.Counts {
		if c.Second < rng.From.T || c.Second > rng.To.T {
			continue
		}
		k := [2]string{c.NS, c.Kind}
		sel, ok := selected[k]
		if !ok {
			sel = f.namespace(c.NS, c.Kind) && f.kind(c.Kind)
			selected[k] = sel
		}
		if sel {
			rows = append(rows, Row{Second: c.Second, NS: c.NS, Kind: c.Kind, Count: c.N})
		}
	}
	return rows, true, nil
}

// merged sorts rows by second, namespace and kind and adds up the rows of
// one key (a second two segments share), returning the total too.
func merged(rows []Row) ([]Row, int64) {
	slices.SortFunc(rows, func(a, b Row) int { return repo.CompareCounts(a.key(), b.key()) })
	var total int64
	out := rows[:0]
	for _, r := range rows {
		total += r.Count
		if n := len(out); n > 0 && out[n-1].Second == r.Second && out[n-1].NS == r.NS && out[n-1].Kind == r.Kind {
			out[n-1].Count += r.Count
			continue
		}
		out = append(out, r)
	}
	return out, total
}
