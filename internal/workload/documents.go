package workload

import (
	"math/rand/v2"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Documents returns n documents as the workload's inserts would write them
// for cfg (the same _id kinds, value mix and large values, spread over its
// collections in turn), without a server: realistic data for benchmarks of
// what rewind does with documents (compression, checksums, storage). The
// same cfg and n give the same documents.
func Documents(cfg Config, n int) []bson.Raw {
	cfg = cfg.withDefaults()
	r := &runner{cfg: cfg}
	r.gen = gen{rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15)), kinds: cfg.Kinds}
	for i, ns := range Namespaces(cfg) {
		r.colls = append(r.colls, newCollState(ns, nil, i, cfg.Seed))
	}
	out := make([]bson.Raw, 0, n)
	for i := range n {
		c := r.colls[i%len(r.colls)]
		doc := append(bson.D{{Key: "_id", Value: c.newID()}}, r.body(int64(i+1), true)...)
		raw, err := bson.Marshal(doc)
		if err != nil {
			panic("workload: marshal a generated document: " + err.Error()) // the generator only makes valid values
		}
		out = append(out, raw)
	}
	return out
}
