// Package repo owns the rewind repository format: the names of objects in a
// storage.Store, the one envelope every object is written in (raw BSON or
// BSON metadata, zstd, a sha256 of the plaintext, optional age encryption),
// the config that makes a repository self-describing, oplog segments,
// timelines and gaps, snapshot chunks and manifests, the agent heartbeat and
// repository locks.
//
// The format is written down as invariants in docs/FORMAT.md; change the two
// together. Object keys never contain user database or collection names:
// those live inside (possibly encrypted) objects.
package repo
