// Package oplog owns reading and storing the source's oplog: tailing
// local.oplog.rs after a resume point (majority-committed entries only, in
// the way the source's capabilities allow), batching entries into segments,
// and making those segments durable in the repository, through a local spool
// when storage is down. Connecting to the source and knowing what it is
// belongs to package source.
package oplog
