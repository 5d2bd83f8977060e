package restore

import (
	"encoding/json"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// Merge is how a restore writes into a target namespace that holds data
// (--merge, "merge"). MergeNone keeps the rule every restore had: the
// target namespace is absent or empty, or --drop drops it first.
type Merge string

// The merge modes.
const (
	MergeNone Merge = ""
	// MergeMissing inserts only the restored documents whose _id the target
	// lacks; it never modifies or deletes a document.
	MergeMissing Merge = "missing"
	// MergeOverwrite replaces by _id the documents the restore restores
	// (inserting those the target lacks) and leaves every other alone.
	MergeOverwrite Merge = "overwrite"
)

// mergeHint is what --merge accepts, for errors.
const mergeHint = "want missing (insert only documents whose _id the target lacks) or overwrite (replace by _id the documents restored)"

// ParseMerge reads a merge mode (--merge, "merge"): missing or overwrite;
// "" is MergeNone. Errors are *InvalidError.
func ParseMerge(s string) (Merge, error) {
	switch m := Merge(s); m {
	case MergeNone, MergeMissing, MergeOverwrite:
		return m, nil
	}
	return MergeNone, invalid("merge", "%q: %s", s, mergeHint)
}

// ParseFilter reads a MongoDB query document written as Extended JSON,
// canonical or relaxed ({"grp": 3}, {"at": {"$gte": {"$date": "2026-11-25T10:31:00Z"}}}),
// for the request field name ("filter"). It checks the form only: the
// server that evaluates the query says whether it understands it. Errors
// are *InvalidError and say how to write it.
func ParseFilter(name, s string) (bson.Raw, error) {
	text := strings.TrimSpace(s)
	if !json.Valid([]byte(text)) {
		return nil, invalid(name, "%q is not JSON; write the query as Extended JSON with quoted field names, for example {\"grp\": 3}", s)
	}
	if !strings.HasPrefix(text, "{") {
		return nil, invalid(name, "%q is not a document; a query is a JSON object, for example {\"grp\": 3}", s)
	}
	var raw bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(text), false, &raw); err != nil {
		return nil, invalid(name, "%q is not a query in Extended JSON: %v; for example {\"grp\": 3} or {\"_id\": {\"$oid\": \"…\"}}", s, err)
	}
	return raw, nil
}

// Staged reports whether the plan writes through staging collections on
// the target (a filter or a merge), rather than into the target directly.
func (p Plan) Staged() bool { return p.Filter != nil || p.Merge != MergeNone }
