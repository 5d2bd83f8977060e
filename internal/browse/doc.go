// Package browse owns the views of the captured oplog that answer "what
// happened?": the operation browser (List: every operation of a time
// range, filtered by namespace, kind and document _id; Summarize: how many
// operations per second, namespace and kind, read from the segments'
// indexes) and a document's history (History: every version of one
// document, from the snapshot before the range and the oplog after it,
// replayed by rewind's own translator into an in-memory deployment that
// holds only that document).
//
// Each is a plain function over a repository that returns data; `rewind
// oplog`, `rewind history` and the API are thin callers that format it.
// Every one takes a shared lock of the repository for its duration, as a
// restore does, so that compaction and prune cannot delete what it reads.
//
// Ranges read only the segments that hold them (a segment's key carries
// its first and last ts). Operations are what repo.Operations says: each
// operation inside an applyOps (a transaction, a batched multi-document
// write) is one operation at the enclosing entry's ts; no-op entries are
// never listed. A repository holding several shards answers for one shard
// at a time (Query.Shard); with one, it is chosen alone.
package browse
