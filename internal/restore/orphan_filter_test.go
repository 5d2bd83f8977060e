package restore

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/repo"
)

func marshalAll(t *testing.T, ds ...bson.D) []bson.Raw {
	t.Helper()
	out := make([]bson.Raw, len(ds))
	for i, d := range ds {
		b, err := bson.Marshal(d)
		must(t, err)
		out[i] = b
	}
	return out
}

// The filter drops only what the routing proves another shard owned:
// a document whose key cannot be computed (an array, a Timestamp under a
// hashed field) is kept and counted as undecided, a chunk object of no
// part is loaded whole, and a plan without a filter keeps everything.
func TestOrphanFilterKeepsWhatItCannotDecide(t *testing.T) {
	owners, err := cluster.NewOwners(
		marshalAll(t, bson.D{{Key: "_id", Value: "app"}, {Key: "primary", Value: "s0"}}),
		marshalAll(t, bson.D{{Key: "_id", Value: "app.h"}, {Key: "key", Value: bson.D{{Key: "k", Value: "hashed"}}}}),
		marshalAll(t,
			bson.D{{Key: "ns", Value: "app.h"}, {Key: "min", Value: bson.D{{Key: "k", Value: bson.MinKey{}}}}, {Key: "max", Value: bson.D{{Key: "k", Value: int64(0)}}}, {Key: "shard", Value: "s0"}},
			bson.D{{Key: "ns", Value: "app.h"}, {Key: "min", Value: bson.D{{Key: "k", Value: int64(0)}}}, {Key: "max", Value: bson.D{{Key: "k", Value: bson.MaxKey{}}}}, {Key: "shard", Value: "s1"}}))
	must(t, err)
	f := &orphanFilter{owners: owners, shardOf: map[string]string{"data/s0/x/h/00000000": "s0"}}
	j := chunkJob{coll: CollectionPlan{Source: Namespace{"app", "h"}}, ref: repo.ChunkRef{Key: "data/s0/x/h/00000000"}}
	docs := marshalAll(t,
		bson.D{{Key: "_id", Value: 1}, {Key: "k", Value: 42}},                   // hashes below 0: s0's
		bson.D{{Key: "_id", Value: 2}, {Key: "k", Value: 1}},                    // above 0: s1's, an orphan here
		bson.D{{Key: "_id", Value: 3}, {Key: "k", Value: bson.A{1}}},            // an array: undecided
		bson.D{{Key: "_id", Value: 4}, {Key: "k", Value: bson.Timestamp{T: 1}}}, // not hashed: undecided
	)
	var counts orphanCounts
	kept := f.owned(j, append([]bson.Raw(nil), docs...), &counts)
	var ids []int32
	for _, d := range kept {
		ids = append(ids, d.Lookup("_id").Int32())
	}
	if len(ids) != 3 || ids[0] != 1 || ids[1] != 3 || ids[2] != 4 {
		t.Errorf("kept _ids %v, want [1 3 4]", ids)
	}
	if counts.skipped != 1 || counts.undecided != 2 || counts.why == nil {
		t.Errorf("counts %+v, want 1 skipped, 2 undecided with a reason", counts)
	}

	other := chunkJob{coll: j.coll, ref: repo.ChunkRef{Key: "data/s9/x/h/00000000"}}
	if got := f.owned(other, append([]bson.Raw(nil), docs...), &orphanCounts{}); len(got) != len(docs) {
		t.Errorf("a chunk of no part: kept %d of %d", len(got), len(docs))
	}
	var none *orphanFilter
	if got := none.owned(j, append([]bson.Raw(nil), docs...), &orphanCounts{}); len(got) != len(docs) {
		t.Errorf("no filter: kept %d of %d", len(got), len(docs))
	}
}
