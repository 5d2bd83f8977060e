package replay

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/source"
)

// doc reads relaxed Extended JSON (small integers are int32).
func doc(t testing.TB, ejson string) bson.Raw {
	t.Helper()
	var r bson.Raw
	if err := bson.UnmarshalExtJSON([]byte(ejson), false, &r); err != nil {
		t.Fatalf("parse %s: %v", ejson, err)
	}
	return r
}

func TestApplyDiff(t *testing.T) {
	tests := []struct{ name, before, diff, want string }{
		{"u in place", `{"_id":1,"a":1,"b":2}`, `{"u":{"a":5}}`, `{"_id":1,"a":5,"b":2}`},
		{"u of missing field appends", `{"_id":1,"b":2}`, `{"u":{"a":5}}`, `{"_id":1,"b":2,"a":5}`},
		{"i of existing field moves it last", `{"_id":1,"a":1,"b":2}`, `{"i":{"a":3}}`, `{"_id":1,"b":2,"a":3}`},
		{"appended u before i, diff order not sorted", `{"_id":1}`, `{"u":{"z":1,"y":2},"i":{"b":3,"a":4}}`, `{"_id":1,"z":1,"y":2,"b":3,"a":4}`},
		{"d drops", `{"_id":1,"a":1,"b":2}`, `{"d":{"a":false}}`, `{"_id":1,"b":2}`},
		{"d of missing does nothing", `{"_id":1}`, `{"d":{"a":false}}`, `{"_id":1}`},
		{"s of missing field does nothing", `{"_id":1}`, `{"sa":{"u":{"x":1}}}`, `{"_id":1}`},
		{"s recurses in place", `{"_id":1,"a":{"x":1,"y":2},"b":0}`, `{"sa":{"u":{"x":9},"i":{"z":3}}}`, `{"_id":1,"a":{"x":9,"y":2,"z":3},"b":0}`},
		{"doc diff on scalar gives null", `{"_id":1,"a":5}`, `{"sa":{"u":{"x":1}}}`, `{"_id":1,"a":null}`},
		{"doc diff on array gives null", `{"_id":1,"a":[1]}`, `{"sa":{"u":{"x":1}}}`, `{"_id":1,"a":null}`},
		{"array diff on object gives null", `{"_id":1,"a":{"x":1}}`, `{"sa":{"a":true,"u0":1}}`, `{"_id":1,"a":null}`},
		{"array diff on null stays null", `{"_id":1,"a":null}`, `{"sa":{"a":true,"u0":1}}`, `{"_id":1,"a":null}`},
		{"array u within bounds", `{"a":[1,2,3]}`, `{"sa":{"a":true,"u1":9}}`, `{"a":[1,9,3]}`},
		{"array u past end pads with null", `{"a":[1]}`, `{"sa":{"a":true,"u3":4}}`, `{"a":[1,null,null,4]}`},
		{"array l truncates", `{"a":[1,2,3]}`, `{"sa":{"a":true,"l":1}}`, `{"a":[1]}`},
		{"array l to zero", `{"a":[1,2,3]}`, `{"sa":{"a":true,"l":0}}`, `{"a":[]}`},
		{"array l grows with null", `{"a":[1]}`, `{"sa":{"a":true,"l":3}}`, `{"a":[1,null,null]}`},
		{"array l then u of last", `{"a":[1,2,3]}`, `{"sa":{"a":true,"l":2,"u1":7}}`, `{"a":[1,7]}`},
		{"array u dropped by truncation", `{"a":[1,2,3]}`, `{"sa":{"a":true,"l":1,"u0":5}}`, `{"a":[5]}`},
		{"array s on element", `{"a":[{"x":1},{"x":2}]}`, `{"sa":{"a":true,"s1":{"u":{"x":3}}}}`, `{"a":[{"x":1},{"x":3}]}`},
		{"array s on scalar element gives null", `{"a":[1,2]}`, `{"sa":{"a":true,"s1":{"u":{"x":3}}}}`, `{"a":[1,null]}`},
		{"array s past end gives null", `{"a":[1]}`, `{"sa":{"a":true,"s2":{"u":{"x":3}}}}`, `{"a":[1,null,null]}`},
		{"nested array diff", `{"a":[[1],[2,3]]}`, `{"sa":{"a":true,"s1":{"a":true,"l":1}}}`, `{"a":[[1],[2]]}`},
		{"field named u via su", `{"u":{"k":1}}`, `{"su":{"u":{"k":2}}}`, `{"u":{"k":2}}`},
		{"field named s via ss", `{"s":{"k":1}}`, `{"ss":{"d":{"k":false}}}`, `{"s":{}}`},
		{"literal dotted name", `{"a":{"b":1},"a.b":2}`, `{"u":{"a.b":5}}`, `{"a":{"b":1},"a.b":5}`},
		{"literal dollar name", `{"x":1}`, `{"i":{"$p":5}}`, `{"x":1,"$p":5}`},
		{"types survive", `{"a":{"$numberLong":"1"}}`, `{"u":{"b":{"$numberDouble":"1.0"}}}`, `{"a":{"$numberLong":"1"},"b":{"$numberDouble":"1.0"}}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyDiff(doc(t, tc.before), doc(t, tc.diff))
			if err != nil {
				t.Fatal(err)
			}
			if want := doc(t, tc.want); string(got) != string(want) {
				t.Fatalf("got %s, want %s", got, want)
			}
			// Every diff is idempotent (MongoDB's own tests apply each twice).
			again, err := applyDiff(got, doc(t, tc.diff))
			if err != nil || string(again) != string(got) {
				t.Fatalf("applied twice: %s (%v), want %s", again, err, got)
			}
		})
	}
}

func TestApplyDiffErrors(t *testing.T) {
	for _, diff := range []string{
		`{"u":{"a":1},"i":{"a":2}}`,          // a name in two sections
		`{"b":{"a":{"o":0}}}`,                // binary column diffs: not on user data
		`{"u":5}`,                            // section not a document
		`{"sa":{"a":true,"u2":1,"u1":2}}`,    // indexes out of order
		`{"sa":{"a":true,"x1":1}}`,           // unknown array field
		`{"sa":{"a":true,"l":-1}}`,           // negative length
		`{"sa":{"a":true,"u99999999999":1}}`, // absurd index
		`{"sa":{"a":true,"s0":5}}`,           // array sub-diff not a document
	} {
		if _, err := applyDiff(doc(t, `{"a":[{"x":1}]}`), doc(t, diff)); err == nil {
			t.Errorf("diff %s: no error", diff)
		}
	}
}

func TestApplyModifier(t *testing.T) {
	tests := []struct{ name, before, o, want string }{
		{"set existing in place", `{"_id":1,"a":1,"b":2}`, `{"$v":1,"$set":{"a":5}}`, `{"_id":1,"a":5,"b":2}`},
		{"new fields in sorted order", `{"_id":1}`, `{"$set":{"zeta":1,"alpha":2}}`, `{"_id":1,"alpha":2,"zeta":1}`},
		{"numeric components sort by number", `{"f":{}}`, `{"$set":{"f.10":1,"f.9":2}}`, `{"f":{"9":2,"10":1}}`},
		{"dotted path creates documents", `{"_id":1}`, `{"$set":{"p.q.r":1}}`, `{"_id":1,"p":{"q":{"r":1}}}`},
		{"dotted path into existing subdocument", `{"a":{"x":1},"b":1}`, `{"$set":{"a.y":2}}`, `{"a":{"x":1,"y":2},"b":1}`},
		{"array index replaces", `{"a":[1,2]}`, `{"$set":{"a.1":9}}`, `{"a":[1,9]}`},
		{"array index pads with null", `{"a":[1]}`, `{"$set":{"a.3":4}}`, `{"a":[1,null,null,4]}`},
		{"path inside array element", `{"a":[{"x":1}]}`, `{"$set":{"a.0.y":2}}`, `{"a":[{"x":1,"y":2}]}`},
		{"path past array end creates a document", `{"a":[]}`, `{"$set":{"a.1.y":2}}`, `{"a":[null,{"y":2}]}`},
		{"unset field", `{"a":1,"b":2}`, `{"$unset":{"a":true}}`, `{"b":2}`},
		{"unset missing", `{"a":1}`, `{"$unset":{"x.y":true}}`, `{"a":1}`},
		{"unset array element sets null", `{"a":[1,2,3]}`, `{"$unset":{"a.1":true}}`, `{"a":[1,null,3]}`},
		{"set and unset in path order", `{"a":1,"b":2}`, `{"$unset":{"b":true},"$set":{"c":3,"a":0}}`, `{"a":0,"c":3}`},
		{"path through a scalar is left alone", `{"a":5}`, `{"$set":{"a.b":1}}`, `{"a":5}`},
		{"whole array", `{"a":[1]}`, `{"$set":{"a":[2,3]}}`, `{"a":[2,3]}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := applyModifier(doc(t, tc.before), doc(t, tc.o))
			if err != nil {
				t.Fatal(err)
			}
			if want := doc(t, tc.want); string(got) != string(want) {
				t.Fatalf("got %s, want %s", got, want)
			}
		})
	}
	if _, err := applyModifier(doc(t, `{}`), doc(t, `{"$inc":{"a":1}}`)); err == nil {
		t.Error("$inc: no error (the oplog never holds it; refuse rather than guess)")
	}
}

func TestFerretDBReplacement(t *testing.T) {
	a := Applier{Flavor: source.FerretDB}
	id := doc(t, `{"_id":7}`).Lookup("_id")
	got, err := a.newDocument(doc(t, `{"_id":7,"a":1,"gone":2}`), id, doc(t, `{"$v":1,"$set":{"_id":7,"a":2}}`))
	if err != nil || string(got) != string(doc(t, `{"_id":7,"a":2}`)) {
		t.Fatalf("ferretdb flavor: got %s (%v), want the $set document as a replacement", got, err)
	}
	got, _ = a.newDocument(doc(t, `{"_id":7,"a":1,"keep":2}`), id, doc(t, `{"$v":1,"$set":{"a":2}}`))
	if string(got) != string(doc(t, `{"_id":7,"a":2,"keep":2}`)) {
		t.Fatalf("ferretdb flavor, $set without _id: got %s, want a $set", got)
	}
	a.Flavor = source.MongoDB
	got, _ = a.newDocument(doc(t, `{"_id":7,"a":1,"gone":2}`), id, doc(t, `{"$v":1,"$set":{"a":2}}`))
	if string(got) != string(doc(t, `{"_id":7,"a":2,"gone":2}`)) {
		t.Fatalf("mongodb flavor: got %s, want a $set", got)
	}
}

func TestUpdateKind(t *testing.T) {
	for o, want := range map[string]byte{
		`{"$v":2,"diff":{"u":{"a":1}}}`: 'v',
		`{"$v":1,"$set":{"a":1}}`:       'm',
		`{"$set":{"a":1}}`:              'm',
		`{"_id":1,"a":1}`:               'r',
		`{"a":1}`:                       'r',
	} {
		if got, _ := updateKind(doc(t, o)); got != want {
			t.Errorf("%s: kind %c, want %c", o, got, want)
		}
	}
}
