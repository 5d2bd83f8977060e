package repo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Drill records (docs/FORMAT.md, "Drill records"): what restore drills
// found, kept in the repository so that a later drill, a fresh machine and
// an auditor can read them with only the URL (and identity).
//
//	drills/SHARD/ref/POINT            a DrillReference: content checksums at POINT
//	drills/SHARD/run/STARTED-xxxxxxxx a DrillResult: one drill's outcome
//
// Both are kind 11 (drill record), a data kind: they name collections and
// may quote documents, so they are compressed and encrypted as segments are.
const (
	prefixDrills  = "drills/"
	drillRefDir   = "/ref/"
	drillRunDir   = "/run/"
	drillRunStamp = "20060102T150405Z"
)

// DrillResultsKept is how many drill results prune keeps per shard: the
// newest; older ones are orphans (retention).
const DrillResultsKept = 100

// DrillSum is one collection's content checksum (checksum.Sum).
type DrillSum struct {
	Namespace string `bson:"ns"`
	Count     int64  `bson:"count"`
	Bytes     int64  `bson:"bytes"`
	SHA256    string `bson:"sha256"`
}

// DrillReference is the content checksums of a shard's collections at one
// restore point, read from the live source as it was at that point (a
// snapshot read, or a source nothing wrote to since), and found equal to a
// restore of the point. A later drill to the point compares its restore
// with them when the source can no longer be read there.
type DrillReference struct {
	Shard    string           `bson:"shard"`
	Point    optime.Timestamp `bson:"point"`
	Snapshot string           `bson:"snapshot,omitempty"` // the snapshot whose consistent point it is
	Recorded time.Time        `bson:"recorded"`
	// Include is the drill's --ns patterns, sorted; empty: every
	// collection. Sums holds exactly the collections they selected.
	Include []string   `bson:"include,omitempty"`
	Sums    []DrillSum `bson:"sums"`
}

// DrillPhase is one step of a drill and how long it took.
type DrillPhase struct {
	Name    string  `bson:"name" json:"name"`
	Seconds float64 `bson:"seconds" json:"seconds"`
}

// DrillResult is what one drill found.
type DrillResult struct {
	Shard   string           `bson:"shard"`
	ID      string           `bson:"id"` // STARTED-xxxxxxxx, the key's last part
	Started time.Time        `bson:"started"`
	Point   optime.Timestamp `bson:"point"`
	// Chosen is how the point was chosen: latest, random, snapshot (right
	// after a snapshot, at its consistent point) or the --to text.
	Chosen   string `bson:"chosen"`
	Snapshot string `bson:"snapshot,omitempty"`
	// Verdict is exact, mismatch, failed (the restore could not be done
	// from the repository) or no-reference (nothing to compare with).
	Verdict string `bson:"verdict"`
	// Against is what the restore was compared with: source or reference.
	Against     string       `bson:"against,omitempty"`
	Problem     string       `bson:"problem,omitempty"`
	Collections int          `bson:"collections"`
	Documents   int64        `bson:"documents"`
	Bytes       int64        `bson:"bytes"` // the restored documents' raw BSON bytes
	Phases      []DrillPhase `bson:"phases"`
	Seconds     float64      `bson:"seconds"` // the whole drill
	// RestoreSeconds is the restore's own time; RTO is that per GB (10^9
	// bytes) of restored documents, 0 when nothing was restored.
	RestoreSeconds float64 `bson:"restoreSeconds"`
	RTO            float64 `bson:"rtoSecondsPerGB"`
}

// DrillResultRef is a listed drill result.
type DrillResultRef struct {
	Key     string
	ID      string
	Started time.Time
}

// DrillPrefix is the key prefix of a shard's drill records.
func DrillPrefix(shard string) string { return prefixDrills + shard + "/" }

func drillRefKey(shard string, point optime.Timestamp) string {
	return prefixDrills + shard + drillRefDir + point.Key()
}

func drillRunKey(shard, id string) string { return prefixDrills + shard + drillRunDir + id }

// NewDrillID returns a fresh drill result id that sorts by its start time:
// "20261125T154300Z-1a2b3c4d".
func NewDrillID(started time.Time) string {
	return started.UTC().Format(drillRunStamp) + "-" + randomHex(4)
}

// WriteDrillReference stores ref under its shard and point, replacing an
// older reference of the same point (the same state: the same sums).
func (r *Repository) WriteDrillReference(ctx context.Context, ref DrillReference) error {
	if err := checkShard(ref.Shard); err != nil {
		return fmt.Errorf("write drill reference: %w", err)
	}
	ref.Recorded = ref.Recorded.UTC()
	return r.putBSON(ctx, drillRefKey(ref.Shard, ref.Point), KindDrill, ref)
}

// ReadDrillReference loads the reference at point; storage.ErrNotFound
// (wrapped) when none was recorded.
func (r *Repository) ReadDrillReference(ctx context.Context, shard string, point optime.Timestamp) (DrillReference, error) {
	var ref DrillReference
	key := drillRefKey(shard, point)
	if err := r.getBSON(ctx, key, KindDrill, &ref); err != nil {
		return ref, err
	}
	if ref.Shard != shard || ref.Point != point {
		return ref, fmt.Errorf("decode object %s: %w: holds the reference of %s at %s", key, ErrCorrupt, ref.Shard, ref.Point)
	}
	return ref, nil
}

// ListDrillReferences lists the points of a shard's references, in time
// order, from their keys alone.
func (r *Repository) ListDrillReferences(ctx context.Context, shard string) ([]optime.Timestamp, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("list drill references: %w", err)
	}
	infos, err := r.listKeys(ctx, prefixDrills+shard+drillRefDir)
	if err != nil {
		return nil, err
	}
	out := make([]optime.Timestamp, 0, len(infos))
	for _, i := range infos {
		ts, err := optime.ParseKey(strings.TrimPrefix(i.Key, prefixDrills+shard+drillRefDir))
		if err != nil {
			return nil, fmt.Errorf("list drill references: %w: %s: %v", ErrCorrupt, i.Key, err)
		}
		out = append(out, ts)
	}
	return out, nil
}

// WriteDrillResult stores res; its ID is set from Started when empty.
func (r *Repository) WriteDrillResult(ctx context.Context, res DrillResult) (DrillResult, error) {
	if err := checkShard(res.Shard); err != nil {
		return res, fmt.Errorf("write drill result: %w", err)
	}
	res.Started = res.Started.UTC()
	if res.ID == "" {
		res.ID = NewDrillID(res.Started)
	}
	if err := checkID("drill id", res.ID, "/"); err != nil {
		return res, fmt.Errorf("write drill result: %w", err)
	}
	return res, r.putBSON(ctx, drillRunKey(res.Shard, res.ID), KindDrill, res)
}

// ListDrillResults lists a shard's drill results, oldest first, from their
// keys alone.
func (r *Repository) ListDrillResults(ctx context.Context, shard string) ([]DrillResultRef, error) {
	if err := checkShard(shard); err != nil {
		return nil, fmt.Errorf("list drill results: %w", err)
	}
	prefix := prefixDrills + shard + drillRunDir
	infos, err := r.listKeys(ctx, prefix)
	if err != nil {
		return nil, err
	}
	out := make([]DrillResultRef, 0, len(infos))
	for _, i := range infos {
		id := strings.TrimPrefix(i.Key, prefix)
		stamp, _, _ := strings.Cut(id, "-")
		started, err := time.Parse(drillRunStamp, stamp)
		if err != nil || checkID("drill id", id, "/") != nil {
			return nil, fmt.Errorf("list drill results: %w: %s is not STARTED-xxxxxxxx", ErrCorrupt, i.Key)
		}
		out = append(out, DrillResultRef{Key: i.Key, ID: id, Started: started})
	}
	return out, nil
}

// ReadDrillResult loads one drill result.
func (r *Repository) ReadDrillResult(ctx context.Context, shard, id string) (DrillResult, error) {
	var res DrillResult
	key := drillRunKey(shard, id)
	if err := r.getBSON(ctx, key, KindDrill, &res); err != nil {
		return res, err
	}
	if res.Shard != shard || res.ID != id {
		return res, fmt.Errorf("decode object %s: %w: holds drill %s of %s", key, ErrCorrupt, res.ID, res.Shard)
	}
	return res, nil
}

// LastDrillResult loads the shard's newest drill result; ok is false when
// there is none.
func (r *Repository) LastDrillResult(ctx context.Context, shard string) (res DrillResult, ok bool, err error) {
	refs, err := r.ListDrillResults(ctx, shard)
	if err != nil || len(refs) == 0 {
		return res, false, err
	}
	// Ids sort by the second a drill started: of the drills of the
	// newest second, the one that started last (milliseconds) is newest.
	last := refs[len(refs)-1].Started
	for i := len(refs) - 1; i >= 0 && refs[i].Started.Equal(last); i-- {
		cand, err := r.ReadDrillResult(ctx, shard, refs[i].ID)
		if err != nil {
			return res, false, err
		}
		if !ok || cand.Started.After(res.Started) {
			res, ok = cand, true
		}
	}
	return res, ok, nil
}

// DeleteDrillRecord removes a drill record by key (prune's orphans).
func (r *Repository) DeleteDrillRecord(ctx context.Context, key string) error {
	if !strings.HasPrefix(key, prefixDrills) {
		return fmt.Errorf("delete drill record %s: %w: not under %s", key, ErrInvalid, prefixDrills)
	}
	return r.deleteIfExists(ctx, key)
}

// ReadDrillRecord reads and checks any drill record by key (verify
// --read-data).
func (r *Repository) ReadDrillRecord(ctx context.Context, key string) error {
	rest, ok := strings.CutPrefix(key, prefixDrills)
	shard, name, _ := strings.Cut(rest, "/")
	kind, id, _ := strings.Cut(name, "/")
	switch {
	case !ok || checkShard(shard) != nil:
	case kind == "ref":
		ts, err := optime.ParseKey(id)
		if err != nil {
			break
		}
		_, err = r.ReadDrillReference(ctx, shard, ts)
		return err
	case kind == "run":
		_, err := r.ReadDrillResult(ctx, shard, id)
		return err
	}
	return fmt.Errorf("read drill record %s: %w: not drills/SHARD/ref/POINT nor drills/SHARD/run/ID", key, ErrCorrupt)
}
