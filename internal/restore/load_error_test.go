package restore

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/catalog"
)

// A duplicate _id while loading means another writer put documents into
// a collection the restore created empty (a restore killed just before
// can still land its last insert): the error says so and what to do; a
// storage error keeps its own message.
func TestChunkErrorDuplicate(t *testing.T) {
	p := Plan{Snapshot: catalog.Snapshot{ID: "20261129T000000Z-0000abcd"}}
	j := chunkJob{coll: CollectionPlan{Source: Namespace{DB: "shop", Coll: "orders"}, Target: Namespace{DB: "shop", Coll: "orders"}}}
	dup := fmt.Errorf("insert into shop.orders: %w", mongo.BulkWriteException{WriteErrors: []mongo.BulkWriteError{{WriteError: mongo.WriteError{Code: 11000, Message: "E11000 duplicate key error"}}}})
	msg := chunkError(p, j, dup).Error()
	for _, want := range []string{"E11000", "received documents from elsewhere", "run the restore again with --drop"} {
		if !strings.Contains(msg, want) {
			t.Errorf("duplicate key while loading: %q; want it to say %q", msg, want)
		}
	}
	if msg := chunkError(p, j, errors.New("connection reset")).Error(); strings.Contains(msg, "elsewhere") {
		t.Errorf("another error: %q; want no word of other writers", msg)
	}
}
