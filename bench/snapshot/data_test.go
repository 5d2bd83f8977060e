package snapshotbench

import (
	"context"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// docSize is the approximate size of one generated document.
const docSize = 2048

// genDoc builds document i: a few typed fields and a payload that is half
// random (incompressible) and half text, so compression has work to do.
func genDoc(rng *rand.Rand, i int) bson.Raw {
	random := make([]byte, docSize/4)
	for j := range random {
		random[j] = byte(rng.IntN(256))
	}
	text := strings.Repeat(fmt.Sprintf("order %d for customer %d; ", i, rng.IntN(1000)), 20)
	d, err := bson.Marshal(bson.D{
		{Key: "_id", Value: int64(i)},
		{Key: "customer", Value: rng.IntN(100000)},
		{Key: "amount", Value: rng.Float64() * 1000},
		{Key: "tags", Value: bson.A{"a", "b", rng.IntN(10)}},
		{Key: "blob", Value: hex.EncodeToString(random)},
		{Key: "note", Value: text[:min(len(text), docSize/2)]},
	})
	if err != nil {
		panic(err)
	}
	return d
}

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
