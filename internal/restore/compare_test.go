package restore

import (
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func raw(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The option comparison, server-free. The integration tests cover capped
// collections on the test server; validators, collations and time series
// are covered here only, because FerretDB v1.24's create refuses them
// ("support for field \"validator\" / \"collation\" / \"timeseries\" is
// not implemented yet", measured), and it accepts clusteredIndex but drops
// it from the options listCollections shows.
func TestCompareOptions(t *testing.T) {
	capped := bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(4096)}, {Key: "max", Value: int64(1)}}
	validator := bson.D{{Key: "validator", Value: bson.D{{Key: "email", Value: bson.D{{Key: "$type", Value: "string"}}}}},
		{Key: "validationLevel", Value: "strict"}, {Key: "validationAction", Value: "error"}}
	fr := func(version string) bson.D {
		return bson.D{{Key: "collation", Value: bson.D{{Key: "locale", Value: "fr"}, {Key: "strength", Value: int32(3)},
			{Key: "version", Value: version}}}}
	}
	for _, tc := range []struct {
		name           string
		backup, target bson.D
		want           []string // each must appear in one difference; nil: none
	}{
		{"both plain", nil, nil, nil},
		{"same capped, other number types", capped,
			bson.D{{Key: "capped", Value: true}, {Key: "size", Value: 4096.0}, {Key: "max", Value: int32(1)}}, nil},
		{"capped size rounded as MongoDB stores it", bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(4000)}},
			bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int32(4096)}}, nil},
		{"target capped, backup not", nil, capped, []string{"is capped (size 4096, max 1), the backup's is not capped"}},
		{"backup capped, target not", capped, nil, []string{"is not capped, the backup's is capped (size 4096, max 1)"}},
		{"other max", capped, bson.D{{Key: "capped", Value: true}, {Key: "size", Value: int64(4096)}, {Key: "max", Value: int64(1000)}},
			[]string{"is capped (size 4096, max 1000), the backup's is capped (size 4096, max 1)"}},
		{"target validator", nil, validator, []string{`has validator {"email":{"$type":"string"}}, the backup's has none`,
			`has validationLevel "strict", the backup's has none`}},
		{"backup validator", validator, nil, []string{`has no validator, the backup's has {"email":{"$type":"string"}}`}},
		{"other validator", validator, append(bson.D{{Key: "validator", Value: bson.D{{Key: "email", Value: bson.D{{Key: "$exists", Value: true}}}}}}, validator[1:]...),
			[]string{`has validator {"email":{"$exists":true}}, the backup's has {"email":{"$type":"string"}}`}},
		{"collation of another ICU version", fr("57.1"), fr("68.2"), nil},
		{"target collation", nil, fr("57.1"), []string{`has collation {"locale":"fr"`}},
		{"time series", nil, bson.D{{Key: "timeseries", Value: bson.D{{Key: "timeField", Value: "t"}}}}, []string{"has timeseries"}},
		{"clustered", bson.D{{Key: "clusteredIndex", Value: bson.D{{Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "unique", Value: true}}}},
			nil, []string{"has no clusteredIndex"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b, tg bson.Raw
			if tc.backup != nil {
				b = raw(t, tc.backup)
			}
			if tc.target != nil {
				tg = raw(t, tc.target)
			}
			got := compareOptions(b, tg)
			if len(tc.want) == 0 && len(got) > 0 {
				t.Fatalf("differences %q, want none", got)
			}
			for _, w := range tc.want {
				if !strings.Contains(strings.Join(got, "\n"), w) {
					t.Fatalf("differences %q, want one saying %q", got, w)
				}
			}
		})
	}
}

func TestCompareIndexes(t *testing.T) {
	spec := func(name string, key bson.D, more ...bson.E) bson.Raw {
		return raw(t, append(bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: key}, {Key: "name", Value: name}}, more...))
	}
	id := spec("_id_", bson.D{{Key: "_id", Value: int32(1)}})
	email := spec("email_1", bson.D{{Key: "email", Value: int32(1)}}, bson.E{Key: "unique", Value: true})
	sku := spec("sku_1", bson.D{{Key: "sku", Value: 1.0}})
	for _, tc := range []struct {
		name           string
		backup, target []bson.Raw
		want           string // "": none
	}{
		{"same", []bson.Raw{id, sku}, []bson.Raw{id, raw(t, bson.D{{Key: "key", Value: bson.D{{Key: "sku", Value: int64(1)}}},
			{Key: "name", Value: "sku_1"}, {Key: "v", Value: int32(1)}, {Key: "ns", Value: "a.b"}})}, ""},
		{"backup has more: the restore builds them", []bson.Raw{id, sku, email}, []bson.Raw{id}, ""},
		{"no _id_ in an old manifest", nil, []bson.Raw{id}, ""},
		{"extra unique index", []bson.Raw{id}, []bson.Raw{id, email}, `has unique index email_1 {"email":1} that the backup lacks`},
		{"extra plain index", []bson.Raw{id}, []bson.Raw{id, sku}, `has index sku_1 {"sku":1.0} that the backup lacks`},
		{"same name, now unique", []bson.Raw{id, spec("email_1", bson.D{{Key: "email", Value: 1}})}, []bson.Raw{id, email},
			`has email_1 {"key":{"email":1},"unique":true}, the backup's email_1 is {"key":{"email":1}}`},
		{"same name, other key order", []bson.Raw{spec("ab", bson.D{{Key: "a", Value: 1}, {Key: "b", Value: 1}})},
			[]bson.Raw{spec("ab", bson.D{{Key: "b", Value: 1}, {Key: "a", Value: 1}})}, "has ab"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compareIndexes(tc.backup, tc.target)
			switch {
			case tc.want == "" && len(got) > 0:
				t.Fatalf("differences %q, want none", got)
			case tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)):
				t.Fatalf("differences %q, want one saying %q", got, tc.want)
			}
		})
	}
}

// bypassEmptyTsReplacement goes only to the servers that take it: 8.0 and
// later, and the 7.0, 6.0 and 5.0 patch releases it was backported to
// (SERVER-88750; the same cut mongorestore makes since TOOLS-3540). Older
// servers, rapid releases and FerretDB refuse it as an unknown field.
func TestEmptyTsBypass(t *testing.T) {
	for _, tc := range []struct {
		v      [3]int
		ferret bool
		want   bool
	}{
		{[3]int{8, 0, 0}, false, true}, {[3]int{8, 2, 1}, false, true}, {[3]int{9, 0, 0}, false, true},
		{[3]int{7, 0, 13}, false, true}, {[3]int{7, 0, 12}, false, false}, {[3]int{7, 3, 4}, false, false},
		{[3]int{6, 0, 17}, false, true}, {[3]int{6, 0, 16}, false, false}, {[3]int{6, 3, 0}, false, false},
		{[3]int{5, 0, 29}, false, true}, {[3]int{5, 0, 28}, false, false}, {[3]int{4, 4, 29}, false, false},
		{[3]int{7, 0, 42}, true, false}, // FerretDB v1.24 says 7.0.42 and refuses the field
	} {
		if got := emptyTsBypass(tc.v, tc.ferret); got != tc.want {
			t.Errorf("emptyTsBypass(%v, ferretdb=%v) = %v, want %v", tc.v, tc.ferret, got, tc.want)
		}
	}
	info := raw(t, bson.D{{Key: "version", Value: "6.0.17-rc1"}})
	if s := serverOf(info); !s.BypassEmptyTsReplacement || s.Version != "6.0.17-rc1" {
		t.Fatalf("serverOf(version 6.0.17-rc1 without versionArray) = %+v", s)
	}
}
