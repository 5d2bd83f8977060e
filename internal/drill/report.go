package drill

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
)

// LoadReport reads the shard's drill results, the newest limit of
// them (0: all), newest first. An encrypted repository's drill records
// need the identity (repo.ErrNeedIdentity).
func LoadReport(ctx context.Context, r *repo.Repository, location, shard string, limit int, now time.Time) (status.DrillReport, error) {
	rep := status.DrillReport{Repository: r.Config().ID, Location: location, Shard: shard, Generated: now.UTC(), Drills: []status.Drill{}}
	refs, err := r.ListDrillResults(ctx, shard)
	if err != nil {
		return rep, err
	}
	// Ids sort by the second a drill started; drills of one second are
	// ordered by the time they record (milliseconds), so the newest limit
	// are read with every drill of the oldest one's second.
	if limit > 0 && len(refs) > limit {
		start := len(refs) - limit
		for start > 0 && refs[start-1].Started.Equal(refs[start].Started) {
			start--
		}
		refs = refs[start:]
	}
	var results []repo.DrillResult
	for _, ref := range refs {
		res, err := r.ReadDrillResult(ctx, shard, ref.ID)
		if err != nil {
			return rep, fmt.Errorf("read drill %s: %w", ref.ID, err)
		}
		results = append(results, res)
	}
	slices.SortStableFunc(results, func(a, b repo.DrillResult) int { return b.Started.Compare(a.Started) })
	if limit > 0 && len(results) > limit {
		results = results[:limit]
	}
	var rtoSum float64
	for _, res := range results {
		d := status.DrillOf(res)
		rep.Drills = append(rep.Drills, d)
		s := &rep.Summary
		s.Total++
		started := d.Started
		switch d.Verdict {
		case Exact:
			s.Exact++
			rtoSum += d.RTOSecondsPerGB
			if s.LastExact == nil {
				s.LastExact = &started
			}
		case Mismatch:
			s.Mismatch++
		case Failed:
			s.Failed++
		default:
			s.NoReference++
		}
		if d.Verdict != Exact && s.LastNotExact == nil {
			s.LastNotExact = &started
		}
	}
	if rep.Summary.Exact > 0 {
		rep.Summary.MeanRTOSecondsPerGB = rtoSum / float64(rep.Summary.Exact)
	}
	return rep, nil
}
