// Package restore puts a deployment, some databases or one collection back
// as it was at a restore point.
//
// Build is the pure planner: from a catalog (restore windows, snapshots,
// timelines), a restore point and namespace filters it picks the newest
// snapshot whose end is at or before the point on a timeline that reaches
// it, the oplog segments from the snapshot's start to the point, and only
// the selected collections' chunks. It does no I/O, so every choice is
// covered by table tests.
//
// Execute carries a plan out on a target deployment: it refuses to touch a
// target collection that holds data unless told to drop it, creates the
// collections with their options and the views, loads the documents in
// parallel with unordered bulk inserts of raw BSON, replays the oplog
// through replay.Applier (idempotent over the snapshot's copy window, as
// MongoDB's initial sync is), builds indexes, and restores users and roles
// when asked. Resolve and CountEntries are the parts of a plan that need
// to read the oplog (names created after the snapshot; --dry-run counts).
package restore
