package snapshot

// SetAfterParts makes a cluster snapshot run f once every part is stored,
// before its cluster manifest (tests interrupt it there).
func SetAfterParts(o *ClusterOptions, f func()) { o.afterParts = f }
