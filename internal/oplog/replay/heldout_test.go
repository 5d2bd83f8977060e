package replay_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestHeldOutVectors runs the vector tests of this package, in a child
// test process, on directories of vectors the harness has never seen
// ($REWIND_OPLOG_VECTORS), and checks what a user reads in its output:
//   - vectors the test server refuses (a field name with a dot in before,
//     a diff writing nested arrays, a hidden index) pass in memory, and on
//     FerretDB are skipped with the server's own reason and the vector's
//     name (on MongoDB they pass);
//   - a vector whose after is wrong fails both ways, and one whose after is
//     wrong but whose data the server refuses fails in memory, so a
//     refusal never hides a wrong result.
func TestHeldOutVectors(t *testing.T) {
	srv := testserver.Start(t) // only to know whether the child's server is FerretDB
	ferret := srv.FerretDB()

	refused := t.TempDir()
	writeVector(t, refused, dottedBefore(false))
	writeVector(t, refused, nestedDiff(false))
	writeVector(t, refused, hiddenIndex())
	out, err := runChild(t, refused)
	if err != nil {
		t.Fatalf("child test run failed: %v\n%s", err, out)
	}
	reasons := map[string]string{
		"held-out-dotted-before": `load before: .*invalid key: \\?"a\.b\\?" \(key must not contain '\.' sign\)`,
		"held-out-nested-diff":   `replay: .*invalid value: .*\(nested arrays are not supported\)`,
		"held-out-hidden-index":  `replay: .*createIndexes.*\(NotImplemented\) Index option \\?"hidden\\?" is not implemented yet`,
	}
	for name, reason := range reasons {
		for _, test := range []string{"TestVectorsInMemory", "TestVectors", "TestVectorsDeferredIndexes"} {
			want := "PASS"
			if ferret && test != "TestVectorsInMemory" {
				want = "SKIP"
				line := fmt.Sprintf(`vector %s: the test server refused it: %s`, regexp.QuoteMeta(name), reason)
				if !regexp.MustCompile(line).MatchString(out) {
					t.Errorf("%s/%s: no skip message matching %q in the child's output:\n%s", test, name, line, out)
				}
			}
			if result := "--- " + want + ": " + test + "/" + name + " "; !strings.Contains(out, result) {
				t.Errorf("%s/%s: want %s in the child's output:\n%s", test, name, want, out)
			}
		}
	}

	wrong := t.TempDir()
	writeVector(t, wrong, dottedBefore(true))
	writeVector(t, wrong, nestedDiff(true))
	writeVector(t, wrong, plainWrong())
	out, err = runChild(t, wrong)
	if err == nil {
		t.Fatalf("child test run passed with vectors whose after is wrong:\n%s", out)
	}
	for _, result := range []string{
		"--- FAIL: TestVectorsInMemory/held-out-dotted-before-wrong ",
		"--- FAIL: TestVectorsInMemory/held-out-nested-diff-wrong ",
		"--- FAIL: TestVectorsInMemory/held-out-plain-wrong ",
		"--- FAIL: TestVectors/held-out-plain-wrong ",
		"--- FAIL: TestVectorsDeferredIndexes/held-out-plain-wrong ",
	} {
		if !strings.Contains(out, result) {
			t.Errorf("want %q in the child's output:\n%s", result, out)
		}
	}
	if ferret && !strings.Contains(out, "--- SKIP: TestVectors/held-out-nested-diff-wrong ") {
		t.Errorf("want the server path to skip held-out-nested-diff-wrong on FerretDB (the memory path fails it):\n%s", out)
	}
}

// runChild runs this package's vector tests on the vectors in dir.
func runChild(t *testing.T, dir string) (string, error) {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run", "^(TestVectors|TestVectorsDeferredIndexes|TestVectorsInMemory)$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "REWIND_OPLOG_VECTORS="+dir)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func writeVector(t *testing.T, dir string, v bson.D) {
	data, err := bson.MarshalExtJSON(v, true, false)
	if err != nil {
		t.Fatal(err)
	}
	name := v[0].Value.(string)
	if err := os.WriteFile(filepath.Join(dir, name+".json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// heldOut builds a vector document in the format of shared/oplog/vectors.
func heldOut(name string, before bson.D, entries bson.A, after bson.D, extra ...bson.E) bson.D {
	v := bson.D{{Key: "name", Value: name}, {Key: "about", Value: "held out: written by TestHeldOutVectors"},
		{Key: "source", Value: "internal/oplog/replay/heldout_test.go"},
		{Key: "before", Value: before}, {Key: "entries", Value: entries}, {Key: "after", Value: after}}
	return append(v, extra...)
}

func updateEntry(ns string, id int32, diff bson.D) bson.D {
	return bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "$v", Value: int32(2)}, {Key: "diff", Value: diff}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}, {Key: "ts", Value: bson.Timestamp{T: 1733100000, I: 1}}}
}

// dottedBefore: before holds a field named "a.b", which the update leaves
// alone while it changes another field.
func dottedBefore(wrong bool) bson.D {
	name, x := "held-out-dotted-before", int32(2)
	if wrong {
		name, x = name+"-wrong", 3
	}
	return heldOut(name,
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "a.b", Value: int32(1)}, {Key: "x", Value: int32(1)}}}}},
		bson.A{updateEntry("app.docs", 1, bson.D{{Key: "u", Value: bson.D{{Key: "x", Value: int32(2)}}}})},
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "a.b", Value: int32(1)}, {Key: "x", Value: x}}}}})
}

// nestedDiff: a diff writes an array into an array element.
func nestedDiff(wrong bool) bson.D {
	name, inner := "held-out-nested-diff", bson.A{int32(3)}
	if wrong {
		name, inner = name+"-wrong", bson.A{int32(4)}
	}
	return heldOut(name,
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "m", Value: bson.A{int32(1), int32(2)}}}}}},
		bson.A{updateEntry("app.docs", 1, bson.D{{Key: "sm", Value: bson.D{{Key: "a", Value: true}, {Key: "u1", Value: bson.A{int32(3)}}}}})},
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "m", Value: bson.A{int32(1), inner}}}}}})
}

// hiddenIndex: createIndexes with the hidden option.
func hiddenIndex() bson.D {
	docs := bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "k", Value: int32(1)}}}
	return heldOut("held-out-hidden-index",
		bson.D{{Key: "app.docs", Value: docs}},
		bson.A{bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: "app.$cmd"},
			{Key: "o", Value: bson.D{{Key: "createIndexes", Value: "docs"}, {Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "k", Value: 1.0}}}, {Key: "name", Value: "k_1"}, {Key: "hidden", Value: true}}},
			{Key: "ts", Value: bson.Timestamp{T: 1733100000, I: 2}}}},
		bson.D{{Key: "app.docs", Value: docs}},
		bson.E{Key: "after_indexes", Value: bson.D{{Key: "app.docs", Value: bson.A{
			bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "_id", Value: int32(1)}}}, {Key: "name", Value: "_id_"}},
			bson.D{{Key: "v", Value: int32(2)}, {Key: "key", Value: bson.D{{Key: "k", Value: 1.0}}}, {Key: "name", Value: "k_1"}, {Key: "hidden", Value: true}},
		}}}})
}

// plainWrong: data every server takes, and an after the entry does not give.
func plainWrong() bson.D {
	return heldOut("held-out-plain-wrong",
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "x", Value: int32(1)}}}}},
		bson.A{updateEntry("app.docs", 1, bson.D{{Key: "u", Value: bson.D{{Key: "x", Value: int32(2)}}}})},
		bson.D{{Key: "app.docs", Value: bson.A{bson.D{{Key: "_id", Value: int32(1)}, {Key: "x", Value: int64(2)}}}}})
}
