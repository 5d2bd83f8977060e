package source

import (
	"strings"
	"testing"

	"github.com/rewind-backup/rewind/internal/repo"
)

func TestParseFlavor(t *testing.T) {
	for in, want := range map[string]Flavor{"": MongoDB, "mongodb": MongoDB, "ferretdb": FerretDB} {
		got, err := ParseFlavor(in)
		if err != nil || got != want {
			t.Errorf("ParseFlavor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	_, err := ParseFlavor("documentdb")
	if err == nil || !strings.Contains(err.Error(), `"documentdb"`) || !strings.Contains(err.Error(), "newer rewind") {
		t.Errorf("ParseFlavor(documentdb) = %v; want an error naming the value and the likely cause", err)
	}
}

// Code asks about capabilities; this pins what each flavor can do, since
// capture, snapshots and replay change behaviour on them.
func TestCapabilities(t *testing.T) {
	m := capabilitiesOf(MongoDB, "7.0.4")
	if !m.SeekByTS || !m.ReliableTailableCursor || !m.MajorityReads || !m.IDRangeQueries || !m.AtomicOplog || !m.SnapshotReads {
		t.Errorf("MongoDB 7.0 capabilities %+v: want all", m)
	}
	// Snapshot reads outside a transaction came with 5.0.
	if old := capabilitiesOf(MongoDB, "4.4.29"); old.SnapshotReads || !old.AtomicOplog {
		t.Errorf("MongoDB 4.4 capabilities %+v: want all but SnapshotReads", old)
	}
	// FerretDB answers the MongoDB version it mimics (7.0.42) but takes
	// readConcern snapshot and ignores it: no capability.
	if f := capabilitiesOf(FerretDB, "7.0.42"); f != (Capabilities{}) {
		t.Errorf("FerretDB capabilities %+v: want none", f)
	}
	if !FerretDB.WholeDocumentUpdates() || MongoDB.WholeDocumentUpdates() {
		t.Error("only FerretDB logs updates as whole-document $set")
	}
}

// Shard is the one rule for the key every timeline and snapshot of a
// source is stored under.
func TestShard(t *testing.T) {
	for _, tc := range []struct {
		src  Source
		want string
	}{
		{Source{Flavor: MongoDB, SetName: "rs0"}, "rs0"},
		{Source{Flavor: FerretDB}, "ferretdb"},
		{Source{Flavor: MongoDB, SetName: "rs/odd name"}, repo.ShardID("rs/odd name")},
	} {
		if got := tc.src.Shard(); got != tc.want {
			t.Errorf("Shard(%+v) = %q, want %q", tc.src, got, tc.want)
		}
	}
	if got := (&Source{Flavor: MongoDB, SetName: "rs/odd name"}).Shard(); !strings.HasPrefix(got, "rs-") {
		t.Errorf("a set name unfit for keys gives %q, want a hashed rs-… id", got)
	}
}

func TestCheckRepository(t *testing.T) {
	s := &Source{Flavor: MongoDB, SetName: "rs0"}
	if err := s.CheckRepository(repo.Config{}); err != nil {
		t.Errorf("a repository that records no source: %v", err)
	}
	if err := s.CheckRepository(repo.Config{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "rs0"}}); err != nil {
		t.Errorf("the same source: %v", err)
	}
	if err := s.CheckRepository(repo.Config{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "rs1"}}); err == nil || !strings.Contains(err.Error(), `"rs1"`) {
		t.Errorf("another replica set: %v", err)
	}
	if err := s.CheckRepository(repo.Config{Source: repo.Source{Flavor: "ferretdb"}}); err == nil || !strings.Contains(err.Error(), "ferretdb") {
		t.Errorf("another flavor: %v", err)
	}
	// Two sets may share a name; their ids tell them apart when both are known.
	s.SetID = "65f0c0ffee0000000000aaaa"
	same := repo.Config{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "rs0", ReplicaSetID: s.SetID}}
	if err := s.CheckRepository(same); err != nil {
		t.Errorf("the same set, by id: %v", err)
	}
	other := repo.Config{Source: repo.Source{Flavor: "mongodb", ReplicaSet: "rs0", ReplicaSetID: "65f0c0ffee0000000000bbbb"}}
	if err := s.CheckRepository(other); err == nil || !strings.Contains(err.Error(), "65f0c0ffee0000000000bbbb") {
		t.Errorf("another set of the same name: %v", err)
	}
	s.SetID = "" // the user may not read the set's configuration: the name must do
	if err := s.CheckRepository(other); err != nil {
		t.Errorf("unknown id on this side: %v", err)
	}
}
