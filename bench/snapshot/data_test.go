package snapshotbench

import (
	"context"
	"fmt"
	"github.com/rewind-backup/rewind/bench/benchtool"
	"math/rand/v2"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// genDoc builds document i (see benchtool.GenDoc).
func genDoc(rng *rand.Rand, i int) bson.Raw { return benchtool.GenDoc(rng, i) }

// genCollection returns the documents of collection c, totalling about
// bytes.
func genCollection(c int, bytes int) []bson.Raw {
	rng := rand.New(rand.NewPCG(uint64(c), 42))
	var docs []bson.Raw
	for size, i := 0, 0; size < bytes; i++ {
		d := genDoc(rng, c*10_000_000+i)
		docs = append(docs, d)
		size += len(d)
	}
	return docs
}

// load inserts the data set: colls collections of totalMB/colls MiB each.
func load(tb testing.TB, client *mongo.Client, db string, colls, totalMB int) (docs int, size int64) {
	ctx := context.Background()
	for c := range colls {
		all := genCollection(c, totalMB<<20/colls)
		coll := client.Database(db).Collection(fmt.Sprintf("c%d", c))
		for start := 0; start < len(all); start += 500 {
			batch := make([]any, 0, 500)
			for _, d := range all[start:min(start+500, len(all))] {
				batch = append(batch, d)
				size += int64(len(d))
			}
			if _, err := coll.InsertMany(ctx, batch); err != nil {
				tb.Fatalf("load %s: %v", coll.Name(), err)
			}
		}
		docs += len(all)
	}
	return docs, size
}
