package restorebench

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/bench/benchtool"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// dataMB is the data set size: $REWIND_BENCH_MB, default 32 (FerretDB
// writes a few MB/s, and every tool restores the whole set).
func dataMB() int {
	if n, err := strconv.Atoi(os.Getenv("REWIND_BENCH_MB")); err == nil && n > 0 {
		return n
	}
	return 32
}

const (
	benchColls = 10
	parallel   = 4 // rewind --parallel, mongorestore's default collections at once, ceiling workers
)

// collBytes is the size of collection c: c0 is five times the others.
func collBytes(c, totalMB int) int {
	unit := totalMB << 20 / (benchColls + 4)
	if c == 0 {
		return 5 * unit
	}
	return unit
}

// genDoc builds document i (see benchtool.GenDoc).
func genDoc(rng *rand.Rand, i int) bson.Raw { return benchtool.GenDoc(rng, i) }

// dataset is the generated documents, collection by collection.
type dataset struct {
	colls [][]bson.Raw
	docs  int
	size  int64
}

// shapeEnv names a data set by its shape instead of its size (see
// generateBench).
const shapeEnv = "REWIND_BENCH_SHAPE"

// generateBench is the benchmark's data set: $REWIND_BENCH_SHAPE,
// "COLLSxDOCSxBYTES" (4x8000x1024 is issue 16's held-out set: 4
// collections of 8,000 documents of ~1 KiB, 32 MB), else the
// $REWIND_BENCH_MB set of generate.
func generateBench(tb testing.TB) dataset {
	s := os.Getenv(shapeEnv)
	if s == "" {
		return generate(dataMB())
	}
	var n [3]int
	parts := strings.Split(s, "x")
	for i := range n {
		if len(parts) != 3 {
			break
		}
		v, err := strconv.Atoi(parts[i])
		if err != nil || v <= 0 {
			break
		}
		n[i] = v
	}
	if n[2] < 256 {
		tb.Fatalf("%s=%q: want COLLSxDOCSxBYTES, e.g. 4x8000x1024 (documents of at least 256 bytes)", shapeEnv, s)
	}
	var d dataset
	for c := range n[0] {
		rng := rand.New(rand.NewPCG(uint64(c), 42))
		var docs []bson.Raw
		for i := range n[1] {
			doc := benchtool.GenDocPayload(rng, c*10_000_000+i, n[2]-100)
			docs = append(docs, doc)
			d.size += int64(len(doc))
		}
		d.colls = append(d.colls, docs)
		d.docs += len(docs)
	}
	return d
}

func generate(totalMB int) dataset {
	var d dataset
	for c := range benchColls {
		rng := rand.New(rand.NewPCG(uint64(c), 42))
		var docs []bson.Raw
		for size, i := 0, 0; size < collBytes(c, totalMB); i++ {
			doc := genDoc(rng, c*10_000_000+i)
			docs = append(docs, doc)
			size += len(doc)
			d.size += int64(len(doc))
		}
		d.colls = append(d.colls, docs)
		d.docs += len(docs)
	}
	return d
}

func collName(c int) string { return fmt.Sprintf("c%d", c) }

func (d dataset) bytesOf(c int) int64 {
	var n int64
	for _, doc := range d.colls[c] {
		n += int64(len(doc))
	}
	return n
}

func (d dataset) batches() []benchtool.Batch {
	var out []benchtool.Batch
	for c, docs := range d.colls {
		out = append(out, benchtool.Batches(collName(c), docs)...)
	}
	return out
}

// insertAll inserts the data set into db with workers unordered raw-BSON
// insertMany calls at once: the load of the source and the ceiling.
func insertAll(ctx context.Context, tb testing.TB, client *mongo.Client, db string, d dataset, workers int) {
	benchtool.InsertAll(ctx, tb, client, db, d.batches(), workers)
}
