package repo

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
)

// Key layout (see docs/FORMAT.md). Keys hold only ids, timestamps and
// counters: never a database or collection name.
const (
	configKey        = "config"
	prefixOplog      = "oplog/"
	prefixTimelines  = "timelines/"
	prefixGaps       = "gaps/"
	prefixSnapshots  = "snapshots/"
	prefixData       = "data/"
	prefixHeartbeats = "heartbeats/"
	prefixLocks      = "locks/"
	prefixTopology   = "topology/"
	prefixClusters   = "clusters/"
	balancerKey      = "balancer"
)

const maxIDLen = 64

// validID reports whether s may be a path component of a key: 1 to 64
// characters from [A-Za-z0-9._-], not starting with a dot nor holding ".."
// (storage keys forbid it). extra lists
// characters that are additionally forbidden (separators inside a name).
func validID(s, forbid string) bool {
	if s == "" || len(s) > maxIDLen || s[0] == '.' || strings.Contains(s, "..") {
		return false
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			c == '.' || c == '_' || c == '-'
		if !ok || strings.IndexByte(forbid, c) >= 0 {
			return false
		}
	}
	return true
}

func checkID(what, s, forbid string) error {
	if !validID(s, forbid) {
		return fmt.Errorf("check %s %q: want 1 to %d characters from [A-Za-z0-9.-_] (not %q), not starting with a dot: %w",
			what, s, maxIDLen, forbid, ErrInvalid)
	}
	return nil
}

func checkShard(s string) error    { return checkID("shard id", s, "") }
func checkTimeline(s string) error { return checkID("timeline id", s, "_") }

// ShardID turns a replica set name into a shard id usable in keys: the name
// itself when it is already safe, else "rs-" and a hash of it.
func ShardID(replicaSet string) string {
	if validID(replicaSet, "") {
		return replicaSet
	}
	sum := sha256.Sum256([]byte(replicaSet))
	return "rs-" + hex.EncodeToString(sum[:8])
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go >= 1.24)
	return hex.EncodeToString(b)
}

// NewTimelineID returns a fresh random timeline id.
func NewTimelineID() string { return randomHex(8) }

// NewSnapshotID returns a fresh snapshot id that sorts by its start time:
// "20261125T154300Z-1a2b3c4d".
func NewSnapshotID(now time.Time) string {
	return now.UTC().Format("20060102T150405Z") + "-" + randomHex(4)
}

func segmentKey(shard, timeline string, first, last, prev optime.Timestamp) string {
	return prefixOplog + shard + "/" + first.Key() + "_" + last.Key() + "_" + timeline + "_" + prev.Key()
}

// parseSegmentKey reads a key written by segmentKey.
func parseSegmentKey(key string) (SegmentInfo, error) {
	rest, ok := strings.CutPrefix(key, prefixOplog)
	shard, name, ok2 := strings.Cut(rest, "/")
	parts := strings.Split(name, "_")
	if !ok || !ok2 || len(parts) != 4 || checkShard(shard) != nil || checkTimeline(parts[2]) != nil {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: not SHARD/FIRST_LAST_TIMELINE_PREV", key)
	}
	prev, err := optime.ParseKey(parts[3])
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: %w", key, err)
	}
	first, err := optime.ParseKey(parts[0])
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: %w", key, err)
	}
	last, err := optime.ParseKey(parts[1])
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: %w", key, err)
	}
	if last.Before(first) {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: last is before first", key)
	}
	if !prev.Before(first) {
		return SegmentInfo{}, fmt.Errorf("parse segment key %q: previous is not before first", key)
	}
	return SegmentInfo{Key: key, Shard: shard, Timeline: parts[2], First: first, Last: last, Prev: prev}, nil
}

func gapKey(shard string, before, after optime.Timestamp) string {
	return prefixGaps + shard + "/" + before.Key() + "_" + after.Key()
}

func timelineKey(shard, id string) string { return prefixTimelines + shard + "/" + id }

func manifestKey(shard, snapshotID string) string {
	return prefixSnapshots + shard + "/" + snapshotID
}

func chunkKey(shard, snapshotID, collectionID string, n int) string {
	return fmt.Sprintf("%s%s/%s/%s/%08d", prefixData, shard, snapshotID, collectionID, n)
}

func heartbeatKey(shard string) string { return prefixHeartbeats + shard }

func lockKey(id string) string { return prefixLocks + id }
