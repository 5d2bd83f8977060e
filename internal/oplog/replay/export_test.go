package replay

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/source"
)

// ApplyUpdateForTest exposes the entry parser and the client-side update
// appliers to the fuzz tests of package replay_test: it parses raw and, for
// an update, applies it to doc.
func ApplyUpdateForTest(raw, doc bson.Raw) error {
	e, err := parseEntry(raw)
	if err != nil || e.op != "u" {
		return err
	}
	if _, err := docID(e.o2); err != nil {
		return err
	}
	a := Applier{Flavor: source.FerretDB}
	_, err = a.newDocument(doc, bson.RawValue{Type: bson.TypeInt32, Value: []byte{1, 0, 0, 0}}, e.o)
	return err
}
