// Package oplog owns everything about the source's oplog: connecting to the
// source and telling its flavor, tailing local.oplog.rs after a resume point
// (majority-committed entries only), batching entries into segments, and
// making those segments durable in the repository, through a local spool when
// storage is down.
package oplog
