package replay_test

import (
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// TestSeedTagFollowsTheCollection pins what the server-free export relies
// on: a seeded collection keeps its options and indexes as given, and its
// tag follows it through renames (also across databases and with
// dropTarget) and convertToCapped, and is gone with drop, dropDatabase and
// emptycapped; a collection the replay creates has none.
func TestSeedTagFollowsTheCollection(t *testing.T) {
	raw := func(ejson string) bson.Raw {
		var r bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(ejson), false, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	m := replay.NewMemory()
	opts := raw(`{"validator":{"n":{"$gt":0}}}`)
	idx := []bson.Raw{raw(`{"v":2,"key":{"_id":1},"name":"_id_"}`), raw(`{"v":2,"key":{"n":1},"name":"n_1"}`)}
	for _, ns := range []string{"a.x", "a.y", "a.z", "a.w", "b.v"} {
		if err := m.Seed(ns, opts, idx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Seed("a.x", nil, nil, "again"); err == nil {
		t.Fatal("seeding an existing collection: no error")
	}
	if o, _ := m.Options("a.x"); string(o) != string(opts) || len(m.Indexes("a.x")) != 2 || string(m.Indexes("a.x")[1]) != string(idx[1]) {
		t.Fatalf("seeded options %s and indexes %v, want them as given", o, m.Indexes("a.x"))
	}
	a := &replay.Applier{Memory: m}
	var entries []bson.Raw
	for _, e := range []string{
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"a.x","to":"c.x2"}}`,
		`{"op":"c","ns":"admin.$cmd","o":{"renameCollection":"a.y","to":"a.z","dropTarget":true}}`,
		`{"op":"c","ns":"a.$cmd","o":{"convertToCapped":"z","size":4096}}`,
		`{"op":"c","ns":"a.$cmd","o":{"emptycapped":"w"}}`,
		`{"op":"c","ns":"b.$cmd","o":{"dropDatabase":1}}`,
		`{"op":"i","ns":"b.v","o":{"_id":1}}`,
		`{"op":"i","ns":"a.new","o":{"_id":1}}`,
	} {
		entries = append(entries, raw(e))
	}
	if _, err := a.Apply(t.Context(), entries); err != nil {
		t.Fatal(err)
	}
	for ns, want := range map[string]string{"c.x2": "a.x", "a.x": "", "a.z": "a.y", "a.y": "", "a.w": "", "b.v": "", "a.new": ""} {
		if got := m.Base(ns); got != want {
			t.Errorf("Base(%s) = %q, want %q", ns, got, want)
		}
	}
}
