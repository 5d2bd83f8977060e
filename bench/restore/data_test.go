package restorebench

import (
	"context"
	"fmt"
	"github.com/rewind-backup/rewind/bench/benchtool"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
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

// batch is one unordered insert: at most 1000 documents and 8 MiB, as
// rewind's restore batches them.
type batch struct {
	coll string
	docs []bson.Raw
}

func (d dataset) batches() []batch {
	var out []batch
	for c, docs := range d.colls {
		for len(docs) > 0 {
			n, size := 0, 0
			for n < len(docs) && n < 1000 && (n == 0 || size+len(docs[n]) <= 8<<20) {
				size += len(docs[n])
				n++
			}
			out = append(out, batch{collName(c), docs[:n]})
			docs = docs[n:]
		}
	}
	return out
}

// insertAll inserts the data set into db with workers unordered raw-BSON
// insertMany calls at once: the load of the source and the ceiling.
func insertAll(ctx context.Context, tb testing.TB, client *mongo.Client, db string, d dataset, workers int) {
	jobs := make(chan batch)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				docs := make([]any, len(j.docs))
				for i, doc := range j.docs {
					docs[i] = doc
				}
				_, err := client.Database(db).Collection(j.coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("insert into %s.%s: %w", db, j.coll, err) })
				}
			}
		})
	}
	for _, j := range d.batches() {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
}
