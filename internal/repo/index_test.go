package repo

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/storage"
)

// rawEntry marshals an oplog entry at ts (fields after ts as given).
func rawEntry(t testing.TB, ts optime.Timestamp, fields ...bson.E) bson.Raw {
	t.Helper()
	raw, err := bson.Marshal(append(bson.D{{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}}}, fields...))
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func crud(op, ns string, id any) bson.D {
	d := bson.D{{Key: "op", Value: op}, {Key: "ns", Value: ns}, {Key: "o", Value: bson.D{{Key: "_id", Value: id}}}}
	if op == "u" {
		d[2].Value = bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "x", Value: 1}}}}}}
		d = append(d, bson.E{Key: "o2", Value: bson.D{{Key: "_id", Value: id}}})
	}
	return d
}

// mixedEntries is one segment's worth of every shape the index counts: plain
// CRUD, commands naming a collection or not, a no-op, a batched delete
// (applyOps without a session), a transaction and a prepared one.
func mixedEntries(t testing.TB) []bson.Raw {
	lsid := bson.D{{Key: "id", Value: bson.Binary{Subtype: 4, Data: make([]byte, 16)}}}
	batched := bson.A{crud("d", "shop.orders", 1), crud("d", "shop.orders", 2), crud("d", "shop.orders", 3)}
	txn := bson.A{crud("i", "shop.orders", 9), crud("u", "shop.stock", 4)}
	return []bson.Raw{
		rawEntry(t, tsOf(100, 1), crud("i", "shop.orders", 1)...),
		rawEntry(t, tsOf(100, 2), crud("i", "shop.orders", 2)...),
		rawEntry(t, tsOf(100, 3), bson.E{Key: "op", Value: "n"}, bson.E{Key: "ns", Value: ""}, bson.E{Key: "o", Value: bson.D{{Key: "msg", Value: "periodic noop"}}}),
		rawEntry(t, tsOf(101, 1), crud("u", "shop.orders", 1)...),
		rawEntry(t, tsOf(101, 2), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "admin.$cmd"},
			bson.E{Key: "o", Value: bson.D{{Key: "applyOps", Value: batched}}}),
		rawEntry(t, tsOf(102, 1), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "shop.$cmd"},
			bson.E{Key: "o", Value: bson.D{{Key: "drop", Value: "tmp"}}}),
		rawEntry(t, tsOf(102, 2), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "shop.$cmd"},
			bson.E{Key: "o", Value: bson.D{{Key: "dropDatabase", Value: 1}}}),
		rawEntry(t, tsOf(103, 1), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "admin.$cmd"},
			bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "txnNumber", Value: int64(1)},
			bson.E{Key: "o", Value: bson.D{{Key: "applyOps", Value: txn}}}),
		rawEntry(t, tsOf(103, 2), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "admin.$cmd"},
			bson.E{Key: "lsid", Value: lsid}, bson.E{Key: "txnNumber", Value: int64(2)},
			bson.E{Key: "o", Value: bson.D{{Key: "applyOps", Value: bson.A{crud("d", "shop.stock", 4)}}, {Key: "prepare", Value: true}}}),
		rawEntry(t, tsOf(103, 3), bson.E{Key: "op", Value: "c"}, bson.E{Key: "ns", Value: "admin.$cmd"},
			bson.E{Key: "o", Value: bson.D{{Key: "renameCollection", Value: "shop.a"}, {Key: "to", Value: "shop.b"}}}),
	}
}

func TestOperationsUnpackApplyOps(t *testing.T) {
	type got struct{ kind, ns, in string }
	var ops []got
	for _, e := range mixedEntries(t) {
		if err := Operations(e, func(o Operation) error {
			ops = append(ops, got{o.Kind, o.NS, o.In})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	want := []got{
		{OpInsert, "shop.orders", ""}, {OpInsert, "shop.orders", ""},
		{OpUpdate, "shop.orders", ""},
		{OpDelete, "shop.orders", InApplyOps}, {OpDelete, "shop.orders", InApplyOps}, {OpDelete, "shop.orders", InApplyOps},
		{OpCommand, "shop.tmp", ""}, {OpCommand, "shop.$cmd", ""},
		{OpInsert, "shop.orders", InTransaction}, {OpUpdate, "shop.stock", InTransaction},
		{OpDelete, "shop.stock", InPreparedTransaction},
		{OpCommand, "shop.a", ""},
	}
	if len(ops) != len(want) {
		t.Fatalf("operations %v\nwant %v", ops, want)
	}
	for i := range want {
		if ops[i] != want[i] {
			t.Errorf("operation %d: %+v, want %+v", i, ops[i], want[i])
		}
	}
}

func TestIndexWrittenWithSegment(t *testing.T) {
	ctx := context.Background()
	id := newIdentity(t)
	r, st := newRepo(t, id, "")
	s, err := r.WriteSegment(ctx, "rs0", "tl1", mixedEntries(t))
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.ReadIndex(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	want := []OpCount{
		{100, "shop.orders", OpInsert, 2},
		{101, "shop.orders", OpDelete, 3}, {101, "shop.orders", OpUpdate, 1},
		{102, "shop.$cmd", OpCommand, 1}, {102, "shop.tmp", OpCommand, 1},
		{103, "shop.a", OpCommand, 1}, {103, "shop.orders", OpInsert, 1},
		{103, "shop.stock", OpDelete, 1}, {103, "shop.stock", OpUpdate, 1},
	}
	if x.Entries != 10 || x.First != s.First || x.Last != s.Last || len(x.Counts) != len(want) {
		t.Fatalf("index %+v", x)
	}
	for i := range want {
		if x.Counts[i] != want[i] {
			t.Errorf("count %d: %+v, want %+v", i, x.Counts[i], want[i])
		}
	}
	// Namespace names are user data: the stored index is encrypted.
	rc, err := st.Get(ctx, IndexKey(s.Key))
	if err != nil {
		t.Fatal(err)
	}
	stored, _ := io.ReadAll(rc)
	rc.Close()
	if bytes.Contains(stored, []byte("shop")) || stored[5]&flagAge == 0 || Kind(stored[6]) != KindIndex {
		t.Fatalf("index object is not an encrypted index envelope (flags %#x, kind %d)", stored[5], stored[6])
	}
	if err := r.CheckIndex(ctx, s, mixedEntries(t)); err != nil {
		t.Fatalf("check index: %v", err)
	}
}

func TestReadIndexMissingCorruptOrStale(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	es := mixedEntries(t)
	s, err := r.WriteSegment(ctx, "rs0", "tl1", es)
	if err != nil {
		t.Fatal(err)
	}
	other, err := r.WriteSegment(ctx, "rs0", "tl2", es[:4])
	if err != nil {
		t.Fatal(err)
	}
	// An index under another segment's key does not match that key.
	copyKey(t, st, IndexKey(other.Key), IndexKey(s.Key))
	if _, err := r.ReadIndex(ctx, s); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("index of another segment: %v, want ErrCorrupt", err)
	}
	// A well-formed index whose counts are not the segment's: only
	// comparing with the entries finds it.
	stale, _ := IndexEntries(es)
	stale.Counts[0].N++
	if err := r.putBSON(ctx, IndexKey(s.Key), KindIndex, stale.doc()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadIndex(ctx, s); err != nil {
		t.Fatalf("well-formed index: %v", err)
	}
	if err := r.CheckIndex(ctx, s, es); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("stale index: %v, want ErrCorrupt", err)
	}
	if err := r.DeleteSegment(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadIndex(ctx, s); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted index: %v, want ErrNotFound", err)
	}
	if _, err := st.Stat(ctx, s.Key); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted segment: %v", err)
	}
}

func TestCompactionKeepsIndexes(t *testing.T) {
	ctx := context.Background()
	r, st := newRepo(t, nil, "")
	es := mixedEntries(t)
	var run []SegmentInfo
	prev := optime.Zero
	for _, part := range [][]bson.Raw{es[:3], es[3:7], es[7:]} {
		s, err := r.WriteSegmentAfter(ctx, "rs0", "tl1", prev, part)
		if err != nil {
			t.Fatal(err)
		}
		run, prev = append(run, s), s.Last
	}
	merged, err := r.CompactSegments(ctx, run)
	if err != nil {
		t.Fatal(err)
	}
	x, err := r.ReadIndex(ctx, merged)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := IndexEntries(es)
	if !x.Equal(want) {
		t.Fatalf("merged index %+v\nwant %+v", x, want)
	}
	for _, s := range run {
		if _, err := st.Stat(ctx, IndexKey(s.Key)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("index of merged-away segment %s: %v, want it deleted", s.Key, err)
		}
	}
}

func TestIndexKeys(t *testing.T) {
	seg := segmentKey("rs0", "tl-1", tsOf(1, 1), tsOf(2, 2), optime.Zero)
	key := IndexKey(seg)
	if key != "oplog-index/rs0/"+seg[len("oplog/rs0/"):] {
		t.Fatalf("index key %q", key)
	}
	if back, ok := SegmentKeyOfIndex(key); !ok || back != seg {
		t.Fatalf("segment of %q: %q %v", key, back, ok)
	}
	if _, ok := SegmentKeyOfIndex(seg); ok {
		t.Fatalf("a segment key taken for an index key")
	}
}

func copyKey(t *testing.T, st storage.Store, from, to string) {
	t.Helper()
	ctx := context.Background()
	rc, err := st.Get(ctx, from)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	if err := st.Put(ctx, to, rc); err != nil {
		t.Fatal(err)
	}
}

// A packed index that is truncated or names a namespace, a kind or a
// second it does not hold is corrupt, never silently wrong counts.
func TestPackedIndexChecks(t *testing.T) {
	ctx := context.Background()
	r, _ := newRepo(t, nil, "")
	s, err := r.WriteSegment(ctx, "rs0", "tl1", mixedEntries(t))
	if err != nil {
		t.Fatal(err)
	}
	good, _ := IndexEntries(mixedEntries(t))
	for name, damage := range map[string]func(d *indexDoc){
		"truncated":        func(d *indexDoc) { d.Counts = d.Counts[:len(d.Counts)-1] },
		"namespace beyond": func(d *indexDoc) { d.NS = d.NS[:1] },
		"kind beyond":      func(d *indexDoc) { d.Kinds = d.Kinds[:1] },
		"second beyond":    func(d *indexDoc) { d.Last = tsOf(d.First.T, 9) },
		"newer version":    func(d *indexDoc) { d.Version = 2 },
	} {
		d := good.doc()
		damage(&d)
		if err := r.putBSON(ctx, IndexKey(s.Key), KindIndex, d); err != nil {
			t.Fatal(err)
		}
		_, err := r.ReadIndex(ctx, s)
		if want := ErrCorrupt; name == "newer version" && !errors.Is(err, ErrUnsupportedVersion) || name != "newer version" && !errors.Is(err, want) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// FuzzDecodeIndex: unpacking any stored index either fails or gives counts
// that pack and unpack to themselves; it never panics.
func FuzzDecodeIndex(f *testing.F) {
	x, _ := IndexEntries(mixedEntries(f))
	seed, _ := bson.Marshal(x.doc())
	f.Add(seed)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var d indexDoc
		if bson.Unmarshal(payload, &d) != nil {
			return
		}
		got, err := d.index()
		if err != nil || got.check(SegmentInfo{First: d.First, Last: d.Last}) != nil {
			return
		}
		again, err := got.doc().index()
		if err != nil || !again.Equal(got) {
			t.Fatalf("counts %+v pack and unpack to %+v (%v)", got.Counts, again.Counts, err)
		}
	})
}
