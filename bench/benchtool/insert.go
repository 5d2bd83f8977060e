package benchtool

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Batch is one unordered insert into collection Coll: at most 1000
// documents and 8 MiB, as rewind's restore batches them (see Batches).
type Batch struct {
	Coll string
	Docs []bson.Raw
}

// Batches cuts a collection's documents into Batch values the way
// rewind's restore does: at most 1000 documents and 8 MiB each.
func Batches(coll string, docs []bson.Raw) []Batch {
	var out []Batch
	for len(docs) > 0 {
		n, size := 0, 0
		for n < len(docs) && n < 1000 && (n == 0 || size+len(docs[n]) <= 8<<20) {
			size += len(docs[n])
			n++
		}
		out = append(out, Batch{coll, docs[:n]})
		docs = docs[n:]
	}
	return out
}

// InsertAll inserts the batches into db with workers unordered raw-BSON
// insertMany calls at once: how the benchmarks load a source, and the
// ceiling a restore is measured against. An insert error fails tb.
func InsertAll(ctx context.Context, tb testing.TB, client *mongo.Client, db string, batches []Batch, workers int) {
	jobs := make(chan Batch)
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	for range workers {
		wg.Go(func() {
			for j := range jobs {
				docs := make([]any, len(j.Docs))
				for i, doc := range j.Docs {
					docs[i] = doc
				}
				_, err := client.Database(db).Collection(j.Coll).InsertMany(ctx, docs, options.InsertMany().SetOrdered(false))
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("insert into %s.%s: %w", db, j.Coll, err) })
				}
			}
		})
	}
	for _, j := range batches {
		jobs <- j
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		tb.Fatal(firstErr)
	}
}

// LoadAverage is the machine's load average over 1, 5 and 15 minutes
// (/proc/loadavg), as `uptime` prints it: the benchmarks print it next to
// every figure, since other jobs share the machine's cores.
func LoadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}
