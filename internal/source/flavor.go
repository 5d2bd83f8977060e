package source

import (
	"fmt"
	"strconv"
	"strings"
)

// Flavor names the product a source runs. It changes the meaning of the
// oplog's update entries, so it is recorded in the repository with every
// timeline and snapshot (as its string) and read back from there by the
// replayer, never from a live server.
type Flavor string

const (
	// MongoDB is a MongoDB replica set (4.4 to 8.x).
	MongoDB Flavor = "mongodb"
	// FerretDB is FerretDB with its oplog switched on; it logs every update,
	// replacements included, as {$v: 1, $set: <the whole new document>}.
	FerretDB Flavor = "ferretdb"
)

// ParseFlavor reads a flavor recorded in a repository. The empty string is
// MongoDB (records written before flavors were recorded came from it);
// anything else unknown is an error naming the value, so a repository
// written by a newer rewind is never replayed with the wrong rules.
func ParseFlavor(s string) (Flavor, error) {
	switch Flavor(s) {
	case "", MongoDB:
		return MongoDB, nil
	case FerretDB:
		return FerretDB, nil
	}
	return "", fmt.Errorf("unknown source flavor %q (want %q or %q): was the repository written by a newer rewind?", s, MongoDB, FerretDB)
}

// WholeDocumentUpdates reports whether the flavor logs every update as a
// $set of the whole new document. Replayed literally such an entry would
// keep fields the update removed; replayed as a replacement it is exact.
func (f Flavor) WholeDocumentUpdates() bool { return f == FerretDB }

// Capabilities are what the source's server can do that changes how rewind
// reads it. Connect sets them once from the server's answers.
type Capabilities struct {
	// SeekByTS: a query on the oplog by ts is an index seek. Without it
	// (FerretDB) every such query, and every sort, reads the whole oplog.
	SeekByTS bool
	// ReliableTailableCursor: a tailable await cursor delivers every entry
	// in order until it dies. Without it (FerretDB's tailable getMore
	// re-runs the query and was seen to skip entries) the oplog is polled
	// with plain cursors.
	ReliableTailableCursor bool
	// MajorityReads: the source is a replica set that reports its majority
	// commit point (hello's lastWrite.majorityOpTime) and serves
	// readConcern "majority". Without it (one FerretDB node) everything
	// logged is committed.
	MajorityReads bool
	// IDRangeQueries: _id range queries use the _id index, so a large
	// collection can be copied in parallel parts. Without it (FerretDB)
	// every part would read the whole collection.
	IDRangeQueries bool
	// AtomicOplog: an oplog entry is visible no later than the data change
	// it logs (MongoDB's oplog visibility rules). Without it (FerretDB
	// appends the entry after the change, in a second step) a read of the
	// data can see a write whose entry a read of the oplog made just after
	// does not show yet, so a snapshot takes its end only after a settle
	// delay.
	AtomicOplog bool
	// SnapshotReads: a read can ask for the data as of a past cluster time
	// (readConcern "snapshot" with atClusterTime, outside a transaction),
	// inside the server's snapshot history window
	// (minSnapshotHistoryWindowInSeconds, 300 s by default): MongoDB 5.0
	// and later. Without it nothing can read a past point: FerretDB
	// v1.24.0 takes that read concern and ignores it, answering the
	// current data (measured), so rewind never asks it for one.
	SnapshotReads bool
}

// capabilitiesOf returns what a server of flavor f at version (buildInfo's
// "7.0.4") can do.
func capabilitiesOf(f Flavor, version string) Capabilities {
	if f == FerretDB {
		return Capabilities{}
	}
	major, _, _ := strings.Cut(version, ".")
	n, _ := strconv.Atoi(major)
	return Capabilities{SeekByTS: true, ReliableTailableCursor: true, MajorityReads: true, IDRangeQueries: true, AtomicOplog: true,
		SnapshotReads: n >= 5}
}
