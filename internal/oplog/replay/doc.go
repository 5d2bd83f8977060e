// Package replay translates oplog entries into ordinary writes on a target
// deployment: inserts become replace-by-_id upserts, updates are applied to
// the current document in rewind itself ($v:1 modifiers and $v:2 diffs, byte
// exact) and written back by _id, deletes go by _id, DDL entries become the
// matching commands, and transactions are buffered and unpacked in order. It
// never calls the server's applyOps, so a restore can rename and filter
// namespaces and run against any server that speaks the MongoDB protocol.
//
// Replay follows the rules of MongoDB's initial sync (shared/oplog/README.md
// §9): it is idempotent over the window in which a fuzzy snapshot was copied.
// An op kind or a command it does not know stops it with an error naming the
// entry, never a silent skip; the internal kinds newer servers log for their
// own storage (global index keys, container writes) and the commands §6.2
// lists are skipped.
//
// Why updates are applied client-side: a $v:2 diff has exact field-order
// rules that update operators reproduce only in simple cases, and a server
// may order new $set fields differently from MongoDB (FerretDB appends them
// in request order). Reading the document costs one read per updated
// document, batched with $in per namespace and per batch, and is exact on
// every server.
//
// Use:
//
//	a := &replay.Applier{Client: target, Flavor: flavor, Map: rename, DeferIndexes: true}
//	for batch := range window { // oplog entries in order, from the snapshot's start
//		if _, err := a.Apply(ctx, batch); err != nil { ... }
//	}
//	_, err := a.BuildIndexes(ctx) // the indexes the window created
//
// One Applier replays one window: it keeps open transactions and the index
// catalog between calls.
//
// With Memory instead of Client, the same Applier replays into a Memory, a
// deployment held in memory as raw documents: the translation is the same,
// only its execution differs (target.go). The tests prove the translator
// that way on every vector, including the forms a test server refuses.
package replay
