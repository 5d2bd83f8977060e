// Package export writes the data of a deployment as it was at a restore
// point, computed from the repository alone, with no MongoDB server:
// canonical Extended JSON lines, mongodump's directory of .bson files, or a
// mongodump archive stream that mongorestore reads. `rewind export` (and
// later the API) are thin callers of
//
//	Request.Validate   every option checked once (*restore.InvalidError)
//	Prepare            restore.Prepare: the same planner, shared lock and
//	                   namespace filter as a restore
//	Prepared.Write     Compute the state, then write it in the format
//
// Compute is the server-free restore. It reads the plan's oplog range once
// to learn which documents the range writes (the _ids per namespace, with
// namespaces a rename joins counted as one), reads the snapshot chunks of
// the collections that have such documents and holds only those documents
// in a replay.Memory seeded with every selected collection's options and
// indexes, then replays the range into it with the same replay.Applier a
// restore uses. Writing then streams each collection's snapshot chunks a
// second time, leaving out the documents the range wrote, and appends the
// Memory's final version of those. Memory grows with the documents the
// range writes, never with the untouched data. The Memory's collections
// carry a tag (replay.Memory.Seed) that follows renames and disappears with
// drops, so the snapshot's untouched documents land where the range's DDL
// put their collection, or nowhere.
//
// Order: namespaces by name; within one, the snapshot's documents the range
// did not write, in the order the snapshot copied them, then the documents
// the range wrote, in the order the replay left them (snapshot order for
// those it updated, insertion order for new ones). Not _id order.
package export
