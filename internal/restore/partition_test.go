package restore

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/repo"
)

func rawEntry(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}

func insertOf(ns string, id any) bson.D {
	return bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}, {Key: "n", Value: 1}}}}
}

func updateOf(ns string, id any) bson.D {
	return bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: ns},
		{Key: "o", Value: bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: 2}}}}}}},
		{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}}}
}

func deleteOf(ns string, id any) bson.D {
	return bson.D{{Key: "op", Value: "d"}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
}

func commandOf(db string, o bson.D) bson.D {
	return bson.D{{Key: "op", Value: "c"}, {Key: "ns", Value: db + ".$cmd"}, {Key: "o", Value: o}}
}

// laneOf places one entry, failing the test on a barrier.
func laneOf(t *testing.T, pt *partitioner, d bson.D) int {
	t.Helper()
	lane, ok := pt.place(rawEntry(t, d))
	if !ok {
		t.Fatalf("%v: a barrier, want a lane", d)
	}
	return lane
}

// A document's entries all go to one lane: its insert (o._id), updates
// (o2._id, o holding only the change) and delete (o._id); so do the forms
// of one _id MongoDB's _id index holds equal (int32 1, int64 1, 1.0,
// decimal 1.00; a string and a symbol; documents holding them), which a
// hash of the raw bytes and type would split.
func TestPartitionKeepsADocumentInOneLane(t *testing.T) {
	pt := newPartitioner(Plan{}, 8)
	d1, err := bson.ParseDecimal128("1.00")
	must(t, err)
	equal := [][]any{
		{int32(1), int64(1), 1.0, d1},
		{int32(0), 0.0, math.Copysign(0, -1), int64(0)},
		{"k", bson.Symbol("k")},
		{bson.D{{Key: "a", Value: int32(7)}}, bson.D{{Key: "a", Value: 7.0}}},
		{bson.A{int64(3), "x"}, bson.A{3.0, bson.Symbol("x")}},
	}
	for _, ids := range equal {
		want := laneOf(t, pt, insertOf("app.c", ids[0]))
		for _, id := range ids {
			for _, e := range []bson.D{insertOf("app.c", id), updateOf("app.c", id), deleteOf("app.c", id)} {
				if got := laneOf(t, pt, e); got != want {
					t.Errorf("%s of _id %v (%T): lane %d, want %d as for %v", e[0].Value, id, id, got, want, ids[0])
				}
			}
		}
	}
	// Different documents spread over the lanes.
	used := map[int]bool{}
	for i := range 64 {
		used[laneOf(t, pt, insertOf("app.c", i))] = true
	}
	if len(used) < 6 {
		t.Errorf("64 _ids used %d of 8 lanes, want them spread", len(used))
	}
}

// Commands, transactions and applyOps are barriers that split a batch into
// runs; writes the partitioner cannot place safely are barriers too. Each
// lane holds its entries in oplog order.
func TestPartitionSplitsAtBarriers(t *testing.T) {
	pt := newPartitioner(Plan{}, 4)
	txn := commandOf("admin", bson.D{{Key: "applyOps", Value: bson.A{insertOf("app.c", 1), insertOf("app.d", 2)}}})
	entries := []bson.D{
		insertOf("app.c", 1), updateOf("app.c", 1), insertOf("app.d", 2), updateOf("app.c", 1),
		commandOf("app", bson.D{{Key: "create", Value: "e"}}),
		deleteOf("app.c", 1),
		txn,
		commandOf("admin", bson.D{{Key: "commitTransaction", Value: 1}}),
		insertOf("app.system.views", "v"),                                                                       // a view's definition
		{{Key: "op", Value: "u"}, {Key: "ns", Value: "app.c"}, {Key: "o", Value: bson.D{{Key: "n", Value: 1}}}}, // no o2._id
		updateOf("app.c", 1), updateOf("app.d", 2),
	}
	raws := make([]bson.Raw, len(entries))
	for i, e := range entries {
		raws[i] = rawEntry(t, e)
	}
	steps := pt.split(raws)
	var shape []string
	for _, s := range steps {
		if s.barrier != nil {
			shape = append(shape, "B")
			continue
		}
		n := 0
		for _, l := range s.lanes {
			n += len(l)
		}
		shape = append(shape, fmt.Sprintf("R%d", n))
	}
	if got, want := strings.Join(shape, " "), "R4 B R1 B B B B R2"; got != want {
		t.Fatalf("steps %s, want %s", got, want)
	}
	// The first run: app.c _id 1's three entries in one lane, in order.
	lane := laneOf(t, pt, insertOf("app.c", 1))
	got := steps[0].lanes[lane]
	var ops []string
	for _, e := range got {
		if ns, _ := e.Lookup("ns").StringValueOK(); ns == "app.c" {
			op, _ := e.Lookup("op").StringValueOK()
			ops = append(ops, op)
		}
	}
	if strings.Join(ops, "") != "iuu" {
		t.Fatalf("app.c _id 1 in lane %d: ops %v, want i u u in oplog order", lane, ops)
	}
}

// A capped or collated collection of the snapshot, one whose backup has a
// unique secondary index (an empty target collection with the backup's
// indexes is not in the way, so the replay may write into it with them
// on), and every namespace a command touches (from the batch that holds the command on, as its
// indexes may be built before the batch), is applied in one lane: a
// unique secondary index can make two documents conflict, and MongoDB's
// own secondaries only get away with reordering them by relaxing unique
// constraints, which a client cannot.
func TestPartitionSerializesCollectionsThatNeedIt(t *testing.T) {
	p := Plan{Collections: []CollectionPlan{
		{Source: Namespace{"app", "log"}, Manifest: repo.CollectionManifest{Options: rawEntry(t, bson.D{{Key: "capped", Value: true}, {Key: "size", Value: 4096}})}},
		{Source: Namespace{"app", "ci"}, Manifest: repo.CollectionManifest{Options: rawEntry(t, bson.D{{Key: "collation", Value: bson.D{{Key: "locale", Value: "en"}, {Key: "strength", Value: 2}}}})}},
		{Source: Namespace{"app", "plain"}},
		{Source: Namespace{"app", "uniq"}, Manifest: repo.CollectionManifest{Indexes: []bson.Raw{
			rawEntry(t, bson.D{{Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}}),
			rawEntry(t, bson.D{{Key: "key", Value: bson.D{{Key: "email", Value: 1}}}, {Key: "name", Value: "email_1"}, {Key: "unique", Value: true}})}}},
		{Source: Namespace{"app", "idx"}, Manifest: repo.CollectionManifest{Indexes: []bson.Raw{
			rawEntry(t, bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}})}}},
	}, Late: []LateNamespace{{Source: Namespace{"app", "lateuniq"}, Indexes: []bson.Raw{
		rawEntry(t, bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}, {Key: "unique", Value: true}})}}}}
	pt := newPartitioner(p, 8)
	oneLane := func(ns string) bool {
		lanes := map[int]bool{}
		for i := range 32 {
			lanes[laneOf(t, pt, insertOf(ns, i))] = true
		}
		return len(lanes) == 1
	}
	for ns, want := range map[string]bool{"app.log": true, "app.ci": true, "app.uniq": true, "app.lateuniq": true,
		"app.plain": false, "app.idx": false, "app.u": false} {
		if got := oneLane(ns); got != want {
			t.Errorf("%s in one lane: %v, want %v", ns, got, want)
		}
	}
	// app.u gets a unique index in the middle of a batch: its writes before
	// the createIndexes entry in that batch are serial already.
	batch := []bson.Raw{rawEntry(t, insertOf("app.u", 1)), rawEntry(t, insertOf("app.u", 2)),
		rawEntry(t, commandOf("app", bson.D{{Key: "createIndexes", Value: "u"}, {Key: "indexes", Value: bson.A{bson.D{{Key: "key", Value: bson.D{{Key: "k", Value: 1}}}, {Key: "name", Value: "k_1"}, {Key: "unique", Value: true}}}}})),
		rawEntry(t, commandOf("other", bson.D{{Key: "dropDatabase", Value: 1}})),
		rawEntry(t, commandOf("admin", bson.D{{Key: "renameCollection", Value: "app.plain"}, {Key: "to", Value: "app.moved"}}))}
	steps := pt.split(batch)
	if len(steps) != 4 || steps[0].barrier != nil {
		t.Fatalf("%d steps, want a run then three barriers", len(steps))
	}
	for ns := range map[string]bool{"app.u": true, "other.x": true, "app.plain": true, "app.moved": true} {
		if !oneLane(ns) {
			t.Errorf("%s after the batch's command: spread over lanes, want one", ns)
		}
	}
}

// Every replay vector, replayed in an order the parallel replay may use
// (split by the partitioner into four lanes, each run's lanes applied last
// lane first, barriers alone), leaves the same documents as a replay in
// oplog order: the vectors hold what MongoDB logs (DDL, transactions,
// applyOps, renames) that no test server produces.
func TestPartitionedOrderKeepsEveryVector(t *testing.T) {
	ctx := context.Background()
	checked := 0
	for _, file := range oplogVectors(t) {
		var v struct {
			Before  bson.Raw   `bson:"before"`
			Entries []bson.Raw `bson:"entries"`
		}
		b, err := os.ReadFile(file)
		must(t, err)
		must(t, bson.UnmarshalExtJSON(b, true, &v))
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		serial := loadMemory(t, v.Before)
		_, serr := (&replay.Applier{Memory: serial}).Apply(ctx, v.Entries)
		mem := loadMemory(t, v.Before)
		pa := newParallelApplier(Plan{}, 4, func(int) *replay.Applier { return &replay.Applier{Memory: mem} })
		perr := applyReversed(ctx, pa, v.Entries)
		if (serr == nil) != (perr == nil) {
			t.Errorf("%s: in oplog order: %v; partitioned: %v", name, serr, perr)
			continue
		}
		if serr != nil {
			continue // a vector that must fail fails both ways
		}
		if a, b := dumpMemory(serial), dumpMemory(mem); a != b {
			t.Errorf("%s: partitioned replay differs:\n%s\nin oplog order:\n%s", name, b, a)
		}
		checked++
	}
	if checked < 50 {
		t.Fatalf("only %d vectors compared", checked)
	}
}

// applyReversed applies entries as pa.Apply does, one step at a time, but
// serially and each run's lanes from the last to the first.
func applyReversed(ctx context.Context, pa *parallelApplier, entries []bson.Raw) error {
	for _, s := range pa.part.split(entries) {
		if s.barrier != nil {
			if _, err := pa.main.Apply(ctx, []bson.Raw{s.barrier}); err != nil {
				return err
			}
			continue
		}
		for i := len(s.lanes) - 1; i >= 0; i-- {
			if _, err := pa.lanes[i].Apply(ctx, s.lanes[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

func loadMemory(t *testing.T, before bson.Raw) *replay.Memory {
	t.Helper()
	m := replay.NewMemory()
	for _, e := range mustElements(before) {
		vals, err := e.Value().Array().Values()
		must(t, err)
		docs := make([]bson.Raw, len(vals))
		for i, d := range vals {
			docs[i] = d.Document()
		}
		must(t, m.Load(e.Key(), docs))
	}
	return m
}

// dumpMemory lists each namespace with its documents sorted by their bytes
// (natural order is not kept by a parallel replay, nor by MongoDB's).
func dumpMemory(m *replay.Memory) string {
	var b strings.Builder
	for _, ns := range m.Namespaces() {
		docs := m.Documents(ns)
		sort.Slice(docs, func(i, j int) bool { return bytes.Compare(docs[i], docs[j]) < 0 })
		fmt.Fprintf(&b, "%s:", ns)
		for _, d := range docs {
			fmt.Fprintf(&b, " %s", d)
		}
		b.WriteString("\n")
	}
	return b.String()
}
