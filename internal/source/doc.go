// Package source is the one home of the source: the MongoDB deployment whose
// oplog rewind reads (a replica set; later every shard of a cluster).
//
// Connect opens a client, asks the server who it is, checks that it keeps a
// readable oplog, and sets everything rewind needs to know about it once:
// its Flavor (the product that wrote the oplog, recorded in the repository
// because it changes the meaning of update entries), its Capabilities (what
// the server can do that changes how rewind reads it: seek the oplog by ts,
// tail it reliably, report a majority commit point, push _id ranges down),
// and its Shard id (the key component every timeline, snapshot and heartbeat
// of this source is stored under). Code asks about a capability, never
// about the product name.
package source
