package restore

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// --filter and --merge are checked with every other option, once for the
// CLI and the API: a filter that is not JSON or not a document, a merge
// mode that does not exist, --merge with --drop, and users and roles with
// either are refused, naming the field in each caller's words.
func TestRequestValidateStaged(t *testing.T) {
	latest := When{Latest: true}
	for _, tc := range []struct {
		req             Request
		field, cli, api string
	}{
		{Request{To: latest, Target: "mongodb://x", Filter: `{grp: 3}`}, "filter", `--filter "{grp: 3}" is not JSON; write the query as Extended JSON with quoted field names`, `filter "{grp: 3}" is not JSON`},
		{Request{To: latest, Target: "mongodb://x", Filter: `grp=3`}, "filter", "is not JSON", "filter"},
		{Request{To: latest, Target: "mongodb://x", Filter: `[{"grp": 3}]`}, "filter", "is not a document; a query is a JSON object", "filter"},
		{Request{To: latest, Target: "mongodb://x", Filter: `3`}, "filter", "is not a document", "filter"},
		{Request{To: latest, Target: "mongodb://x", Filter: `{"_id": {"$oid": "nothex"}}`}, "filter", "is not a query in Extended JSON", "filter"},
		{Request{To: latest, Target: "mongodb://x", Merge: "upsert"}, "merge", `--merge "upsert": want missing (insert only documents whose _id the target lacks) or overwrite`, `merge "upsert"`},
		{Request{To: latest, Target: "mongodb://x", Merge: MergeMissing, Drop: true}, "merge", "--merge missing with --drop: a merge writes beside the documents the target holds, --drop drops them first; choose one",
			"merge missing with drop: a merge writes beside the documents the target holds, drop drops them first"},
		{Request{To: latest, Target: "mongodb://x", Filter: `{"a": 1}`, WithUsersAndRoles: true}, "with_users_and_roles", "--with-users-and-roles with --filter or --merge", "with_users_and_roles with filter or merge"},
	} {
		err := tc.req.Validate()
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != tc.field || !strings.Contains(err.Error(), tc.cli) || !strings.HasPrefix(inv.API(), tc.api) {
			t.Errorf("Validate(%+v) = %v (API: %v); want field %s, %q on the command line, %q in the API", tc.req, err, apiText(inv), tc.field, tc.cli, tc.api)
		}
	}
	for _, req := range []Request{
		{To: latest, Target: "mongodb://x", Filter: ` {"grp": 3} `, Merge: MergeMissing},
		{To: latest, Target: "mongodb://x", Filter: `{"at": {"$gte": {"$date": "2026-11-25T10:31:00Z"}}, "_id": {"$oid": "5f1d7a3b9c8e4a0012345678"}}`, Merge: MergeOverwrite},
		{To: latest, Target: "mongodb://x", Merge: MergeMissing},
		{To: latest, Target: "mongodb://x", Filter: `{"grp": 3}`, Drop: true},
	} {
		if err := req.Validate(); err != nil {
			t.Errorf("Validate(%+v): %v; want valid", req, err)
		}
	}
}

// A filter keeps its Extended JSON types: a date is a date, an ObjectId an
// ObjectId, a number in relaxed form the number.
func TestParseFilterTypes(t *testing.T) {
	raw, err := ParseFilter("filter", `{"at": {"$gte": {"$date": "2026-11-25T10:31:00Z"}}, "_id": {"$oid": "5f1d7a3b9c8e4a0012345678"}, "n": 3}`)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := raw.Lookup("at").Document().Lookup("$gte").DateTimeOK()
	if at != 1795602660000 || raw.Lookup("_id").Type != bson.TypeObjectID || raw.Lookup("n").Type != bson.TypeInt32 {
		t.Fatalf("ParseFilter: %s; want a date, an ObjectId and an int32", raw)
	}
}
