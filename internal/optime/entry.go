package optime

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// OfEntry reads the ts field of a raw oplog entry: the one place that does,
// for capture, segments, restore and tests alike. It fails when the field is
// missing or is not a BSON timestamp.
func OfEntry(entry bson.Raw) (Timestamp, error) {
	v, err := entry.LookupErr("ts")
	if err != nil {
		return Zero, fmt.Errorf("oplog entry has no ts field: %w", err)
	}
	t, i, ok := v.TimestampOK()
	if !ok {
		return Zero, fmt.Errorf("oplog entry ts is a %s, not a timestamp", v.Type)
	}
	return Timestamp{T: t, I: i}, nil
}
