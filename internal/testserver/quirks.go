package testserver

import "github.com/rewind-backup/rewind/internal/workload"

// FerretDBKinds are the value kinds FerretDB v1.24 stores faithfully. It
// refuses decimal128, NaN and ±Infinity, nested arrays, MinKey/MaxKey,
// JavaScript, symbol, undefined and DBPointer, and stores -0.0 as +0.0. It
// stores a regular expression with the "x" option, but closes the connection
// when it has to compare one ($addToSet: "regex: option not implemented").
var FerretDBKinds = workload.AllKinds.Without(
	workload.Decimal128, workload.NaNInf, workload.NestedArray, workload.MinMaxKey,
	workload.JavaScript, workload.Symbol, workload.Undefined, workload.DBPointer,
	workload.NegZero, workload.RegexX)

// Kinds returns the value kinds this server accepts.
func (s *Server) Kinds() workload.Kinds {
	if s.ferret {
		return FerretDBKinds
	}
	return workload.AllKinds
}

// Workload returns a workload configuration for this server: its database
// prefix and the value kinds it accepts. Callers set Ops or Duration.
func (s *Server) Workload(seed uint64) workload.Config {
	return workload.Config{Seed: seed, Prefix: s.prefix, Kinds: s.Kinds()}
}
