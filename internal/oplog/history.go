package oplog

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

// ErrOtherHistory means the source's oplog does not continue the one the
// repository holds: its oplog reaches back before the repository's newest
// entry but does not hold that entry (or holds a different one at its
// timestamp). It is another deployment, or this one with a new history
// (re-created, or restored from a backup); capture into this repository
// would mix two histories.
var ErrOtherHistory = errors.New("the source's oplog is not the one this repository holds")

// checkSameHistory proves that src continues the history stored up to last,
// the newest stored segment: the source's oplog still holds its last entry,
// byte for byte when the repository can be read here, or has rolled past it
// (capture then records a gap, as it should). This is the source identity
// that works for every flavor: a FerretDB source has no replica set name,
// and two replica sets may share one.
func checkSameHistory(ctx context.Context, r *repo.Repository, src *source.Source, last repo.SegmentInfo) error {
	at := last.Last
	stored, err := lastStored(ctx, r, last)
	if err != nil {
		return err
	}
	raw, held, err := entryAt(ctx, src, at, stored)
	if err != nil {
		return err
	}
	if !held {
		oldest, err := src.OldestEntry(ctx)
		if err != nil {
			return err
		}
		if !oldest.IsZero() && oldest.After(at) {
			return nil // rolled past: a gap, found and recorded by capture
		}
		return otherHistory(at, oldest, "does not hold it")
	}
	if stored == nil {
		return nil // encrypted and no identity here: the timestamp alone must do
	}
	if ts, _ := optime.OfEntry(stored); ts == at && !bytes.Equal(stored, raw) {
		return otherHistory(at, optime.Zero, "holds a different entry at that timestamp")
	}
	return nil
}

// lastStored reads the newest stored entry, or nil when the repository is
// encrypted and no identity is here to read it.
func lastStored(ctx context.Context, r *repo.Repository, last repo.SegmentInfo) (bson.Raw, error) {
	entries, err := r.ReadSegment(ctx, last)
	if errors.Is(err, repo.ErrNeedIdentity) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the repository's newest segment: %w", err)
	}
	return entries[len(entries)-1], nil
}

// entryAt looks up the source's oplog entry at at. A source that cannot
// seek its oplog by ts (FerretDB) would read all of it for that; it gives
// every entry an _id and finds one by _id with one row read, so there
// the stored entry's _id is looked up instead (another deployment's entry
// has another _id: it is then "not held", and refused as such).
func entryAt(ctx context.Context, src *source.Source, at optime.Timestamp, stored bson.Raw) (bson.Raw, bool, error) {
	if id, err := stored.LookupErr("_id"); err == nil && !src.Caps.SeekByTS {
		return src.EntryByID(ctx, id)
	}
	return src.EntryAt(ctx, at)
}

func otherHistory(at, oldest optime.Timestamp, what string) error {
	reach := "is empty"
	if !oldest.IsZero() {
		reach = fmt.Sprintf("reaches back to %s (%s)", oldest, oldest.Time().Format("2006-01-02T15:04:05Z"))
	}
	if what == "does not hold it" {
		return fmt.Errorf("%w: the repository's newest entry is %s (%s); the source's oplog %s but does not hold it. "+
			"Point --source at the deployment this repository backs up; if this deployment was re-created or restored from a backup, back it up into a new repository",
			ErrOtherHistory, at, at.Time().Format("2006-01-02T15:04:05Z"), reach)
	}
	return fmt.Errorf("%w: the repository's newest entry is %s (%s); the source %s. "+
		"Point --source at the deployment this repository backs up, or use a new repository for this one",
		ErrOtherHistory, at, at.Time().Format("2006-01-02T15:04:05Z"), what)
}
