// Package restore puts a deployment, some databases or one collection back
// as it was at a restore point. It is the one restore use case: the CLI
// (`rewind restore`), the API (POST /api/v1/restores) and verify's trial
// restore are thin callers of
//
//	Request.Validate   every option checked once (*InvalidError names the field)
//	Prepare            shared lock held until Release; catalog; Build; flavor
//	                   fallback; Resolve (reads the oplog range once)
//	Connect / Use      the target, and what its server is (buildInfo)
//	Prepared.Check     every target namespace the restore will write, read only
//	Prepared.Execute   Check again, refuse or --drop, then create, load, replay,
//	                   indexes, users and roles
//
// Build is the pure planner: from a catalog (restore windows, snapshots,
// timelines), a restore point and namespace filters it picks the newest
// snapshot whose end is at or before the point on a timeline that reaches
// it, the oplog segments from the snapshot's start to the point, and only
// the selected collections' chunks. It does no I/O, so every choice is
// covered by table tests. Resolve is the part of planning that reads the
// oplog: the entries to replay, and the namespaces the range creates or
// writes that the snapshot does not hold (Plan.Late).
//
// A restore never leaves a partial target for a reason it could have
// checked first: Check looks at every namespace it will write (the
// snapshot's, the oplog range's, and those a replayed dropDatabase would
// drop) for data, options and indexes before the first write, and Execute
// refuses them all at once, or with --drop drops them so that they are
// re-created as the backup has them. A restore stopped for a reason it
// could not check (an interrupt, a storage error, a lost lock) says what
// it left: nothing, or a partial restore to run again with --drop
// (ErrPartial). It then creates the collections with
// their options and the views, loads the documents in parallel with
// unordered bulk inserts of raw BSON, replays the oplog through
// replay.Applier (idempotent over the snapshot's copy window, as MongoDB's
// initial sync is), builds indexes, and restores users and roles when
// asked. On servers that take it, every write says bypassEmptyTsReplacement
// so a top-level Timestamp(0, 0) survives (see emptyTsBypass).
//
// A filtered or merging restore (Request.Filter, Request.Merge) runs the
// same restore into staging databases on the target (StagingPrefix), asks
// the target's server the filter there, copies the matching documents
// into the targets as the merge mode says, and drops the staging however
// it ends. An undo (UndoRequest, PrepareUndo, PreparedUndo.Execute) reads
// an oplog range for the documents it changed, stages their versions at
// both ends of the range the same way, compares them with the target's
// byte for byte before its first write, and puts back those the target
// still holds as the range left them.
package restore
