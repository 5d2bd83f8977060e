package snapshotbench

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/bench/benchtool"
)

// genCollection returns the documents of collection c, totalling about
// bytes (benchtool.GenCollection).
func genCollection(c int, bytes int) []bson.Raw { return benchtool.GenCollection(c, bytes) }

// load inserts the data set: colls collections of totalMB/colls MiB each.
func load(tb testing.TB, client *mongo.Client, db string, colls, totalMB int) (docs int, size int64) {
	return benchtool.Load(tb, client, db, colls, totalMB)
}
