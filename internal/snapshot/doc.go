// Package snapshot takes consistent base snapshots: it notes the oplog
// timestamp before the copy starts (start), copies the selected collections in
// parallel as raw BSON into bounded chunks, records what a restore needs
// (collection options, indexes, views, users and roles), notes the timestamp
// after the copy (end), makes sure the repository holds the oplog between
// start and end (capturing it itself when no agent does), and writes the
// manifest last. The snapshot is consistent at end once that oplog range is
// replayed over its documents.
//
// What is copied: every collection of every database except admin, config
// and local, minus system.* collections. Exceptions, on purpose: system.js
// (stored functions are user data) is copied; views (listed by the server
// from system.views) are recorded as views, not copied; a time-series
// collection is copied through its own name (the server returns
// measurements) and its system.buckets.* collection is skipped. Users and
// roles of the selected databases come from usersInfo and rolesInfo; a server
// without those commands (FerretDB) records none.
package snapshot
