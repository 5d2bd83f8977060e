package restore

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// decide puts a document back only when the target still holds the
// version the range left; every other case is named.
func TestDecide(t *testing.T) {
	doc := func(v int) bson.Raw {
		raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: v}})
		return raw
	}
	a, b, c := doc(1), doc(2), doc(3)
	for _, tc := range []struct {
		name    string
		f, t, c bson.Raw
		want    verdict
	}{
		{"updated in the range, untouched since", a, b, b, restored},
		{"deleted in the range, untouched since", a, nil, nil, reinserted},
		{"inserted in the range, untouched since", nil, b, b, deleted},
		{"updated in the range and since", a, b, c, conflict},
		{"deleted in the range, inserted again since", a, nil, c, conflict},
		{"inserted in the range, deleted since (as at --from)", nil, b, nil, unchanged},
		{"updated in the range, deleted since", a, b, nil, conflict},
		{"changed and changed back in the range", a, a, c, unchanged},
		{"inserted and deleted in the range", nil, nil, nil, unchanged},
		{"put back already (an undo run again)", a, b, a, unchanged},
		{"deleted in the range, put back already", a, nil, a, unchanged},
	} {
		if got := decide(tc.f, tc.t, tc.c); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	// A replacement that changes only a field's type is a change.
	i32, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: int32(1)}})
	i64, _ := bson.Marshal(bson.D{{Key: "_id", Value: 1}, {Key: "v", Value: int64(1)}})
	if decide(i32, i64, i64) != restored || decide(i32, i64, i32) != unchanged {
		t.Error("decide compares documents byte for byte: int32 1 and int64 1 differ")
	}
}
