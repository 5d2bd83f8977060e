// Package capture benchmarks continuous capture: the recovery point
// objective of a running agent against the real test server, and the
// capture pipeline's own capacity with the server taken out.
//
//	go test ./bench/capture -run '^$' -bench . -benchtime 1x
package capture
