package oplog

import (
	"context"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// RepoSink stores batches as the segments of one shard of a repository. The
// first segment of a timeline is preceded by the timeline's record (with the
// source's flavor, which decides how its entries are replayed) and, when an
// earlier timeline exists, by the record of the gap between them.
type RepoSink struct {
	Repo   *repo.Repository
	Shard  string
	Source *source.Source
	// LastTimeline and LastTS describe the newest stored segment.
	LastTimeline string
	LastTS       optime.Timestamp
}

// NewRepoSink reads where the shard's stored timeline ends and returns a
// sink that continues it, with the resume point for a Capture. It refuses
// (ErrOtherHistory) a source whose oplog does not continue that timeline.
func NewRepoSink(ctx context.Context, r *repo.Repository, shard string, src *source.Source) (*RepoSink, Resume, error) {
	s := &RepoSink{Repo: r, Shard: shard, Source: src}
	h, err := r.History(ctx, shard)
	if err != nil {
		return nil, Resume{}, err
	}
	var resume Resume
	var newest repo.SegmentInfo
	for _, tl := range h.Timelines {
		// The timeline that reaches furthest is the one capture goes on
		// (a timeline copied by prune can start where its parent does).
		// Stored, not ID: a timeline listed in parts around a missing
		// segment goes on under the id its keys carry.
		if tl.Last.After(s.LastTS) {
			s.LastTimeline, s.LastTS = tl.Stored, tl.Last
			resume = Resume{Timeline: tl.Stored, After: tl.Last}
			newest = tl.Segments[len(tl.Segments)-1]
		}
	}
	if resume.Timeline != "" {
		if err := checkSameHistory(ctx, r, src, newest); err != nil {
			return nil, Resume{}, err
		}
	}
	return s, resume, nil
}

// CheckContinues refuses (ErrOtherHistory) a source whose oplog does not
// continue the shard's stored timeline, as capture would at its start; a
// shard with nothing stored passes. It reads and writes nothing else.
func CheckContinues(ctx context.Context, r *repo.Repository, shard string, src *source.Source) error {
	_, _, err := NewRepoSink(ctx, r, shard, src)
	return err
}

// WriteSegment implements Sink.
func (s *RepoSink) WriteSegment(ctx context.Context, b Batch) error {
	if b.Timeline != s.LastTimeline {
		if s.LastTimeline != "" {
			g := repo.Gap{Shard: s.Shard, Before: s.LastTS, After: b.First, Detected: time.Now(),
				Reason: "the source's oplog no longer held the resume point"}
			if err := s.Repo.RecordGap(ctx, g); err != nil {
				return err
			}
		}
		info := repo.TimelineInfo{Shard: s.Shard, ID: b.Timeline, Flavor: string(s.Source.Flavor),
			Version: s.Source.Version, Started: time.Now()}
		if err := s.Repo.WriteTimeline(ctx, info); err != nil {
			return err
		}
	}
	if _, err := s.Repo.WriteSegmentAfter(ctx, s.Shard, b.Timeline, b.Prev, b.Entries); err != nil {
		return err
	}
	s.LastTimeline, s.LastTS = b.Timeline, b.Last
	return nil
}
