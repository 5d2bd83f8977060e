package repo

import (
	"context"
	"fmt"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Heartbeat is the agent's small status object, rewritten every few
// seconds, so that `rewind status` and the dashboard can tell a live agent
// from a dead one with only the repository. It is not encrypted.
type Heartbeat struct {
	Shard       string           `bson:"shard"`
	Host        string           `bson:"host"`
	PID         int              `bson:"pid"`
	Version     string           `bson:"version,omitempty"` // rewind version
	Started     time.Time        `bson:"started"`
	Updated     time.Time        `bson:"updated"`
	LastDurable optime.Timestamp `bson:"lastDurable"` // newest ts in a stored segment
	Lag         time.Duration    `bson:"lag"`         // source's newest ts minus LastDurable
	// CoveredThrough is how far the shard's oplog is known complete in
	// the repository: every entry at or before it is stored. It is at
	// least LastDurable, and moves past it while the shard is idle (see
	// oplog.Stats.CoveredThrough). Zero in heartbeats written before it
	// existed: readers then use LastDurable.
	CoveredThrough optime.Timestamp `bson:"coveredThrough"`
	// Error is the shard's capture error while it fails (storage or
	// source), "" while it captures.
	Error string `bson:"error,omitempty"`
	// Polled is set on a source that cannot seek its oplog by ts
	// (FerretDB): the proof of its newest entry from the agent's newest
	// complete poll (oplog.PollMark). Nil elsewhere.
	Polled *PolledOplog `bson:"polled,omitempty"`
}

// PolledOplog is the oplog's mark (source.OplogMark: its entry count and
// oldest entry) taken just before an agent's poll began, and the newest
// entry capture had read when that poll ended. While the source's mark
// still equals Count and Oldest, Newest is the oplog's newest entry.
type PolledOplog struct {
	Count  int64            `bson:"count"`
	Oldest optime.Timestamp `bson:"oldest"`
	Newest optime.Timestamp `bson:"newest"`
}

// Covered is CoveredThrough, or LastDurable in a heartbeat that has none.
func (hb Heartbeat) Covered() optime.Timestamp {
	if hb.CoveredThrough.After(hb.LastDurable) {
		return hb.CoveredThrough
	}
	return hb.LastDurable
}

// WriteHeartbeat replaces the shard's heartbeat object.
func (r *Repository) WriteHeartbeat(ctx context.Context, hb Heartbeat) error {
	if err := checkShard(hb.Shard); err != nil {
		return fmt.Errorf("write heartbeat: %w", err)
	}
	hb.Started, hb.Updated = hb.Started.UTC(), hb.Updated.UTC()
	return r.putBSON(ctx, heartbeatKey(hb.Shard), KindHeartbeat, hb)
}

// ReadHeartbeat loads the shard's heartbeat; storage.ErrNotFound (wrapped)
// if no agent ever wrote one.
func (r *Repository) ReadHeartbeat(ctx context.Context, shard string) (Heartbeat, error) {
	var hb Heartbeat
	if err := checkShard(shard); err != nil {
		return hb, fmt.Errorf("read heartbeat: %w", err)
	}
	key := heartbeatKey(shard)
	if err := r.getBSON(ctx, key, KindHeartbeat, &hb); err != nil {
		return hb, err
	}
	if hb.Shard != shard {
		return hb, fmt.Errorf("decode object %s: %w: holds shard %q", key, ErrCorrupt, hb.Shard)
	}
	return hb, nil
}
