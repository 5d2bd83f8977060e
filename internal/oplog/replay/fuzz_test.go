package replay_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// FuzzEntry feeds arbitrary bytes to the entry parser and the client-side
// update appliers (entries come from storage): they must return an error or
// a result, never panic or run away. Seeds: every entry of every vector,
// with each vector's first before document as the document to update.
func FuzzEntry(f *testing.F) {
	for _, v := range loadVectors(f) {
		target, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}})
		if els, _ := v.Before.Elements(); len(els) > 0 {
			if docs, _ := els[0].Value().Array().Values(); len(docs) > 0 {
				target = docs[0].Document()
			}
		}
		for _, e := range v.Entries {
			f.Add([]byte(e), []byte(target))
		}
	}
	f.Fuzz(func(t *testing.T, entry, doc []byte) {
		if bson.Raw(doc).Validate() != nil {
			return // documents read from the server are valid BSON
		}
		_ = replay.ApplyUpdateForTest(entry, doc)
	})
}
