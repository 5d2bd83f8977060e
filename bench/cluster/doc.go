// Package clusterbench holds the benchmarks of sharded clusters (issue
// 13) on a stand-in cluster: test servers as shards and one playing the
// config server. The benchmarks are in its tests; see README.md.
package clusterbench
