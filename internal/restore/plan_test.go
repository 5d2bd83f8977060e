package restore

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
)

func ts(t, i uint32) optime.Timestamp { return optime.Timestamp{T: t, I: i} }

func seg(tl string, first, last uint32) repo.SegmentInfo {
	return repo.SegmentInfo{Key: "oplog/rs0/" + tl + "-" + ts(first, 1).Key(), Timeline: tl,
		First: ts(first, 1), Last: ts(last, 1), Size: 100}
}

func timeline(id, flavor string, segs ...repo.SegmentInfo) repo.Timeline {
	return repo.Timeline{ID: id, Info: &repo.TimelineInfo{ID: id, Flavor: flavor},
		First: segs[0].First, Last: segs[len(segs)-1].Last, Segments: segs}
}

func coll(db, name string, chunks int) repo.CollectionManifest {
	c := repo.CollectionManifest{DB: db, Name: name, UUID: db + name}
	for n := range chunks {
		c.Chunks = append(c.Chunks, repo.ChunkRef{Key: "data/" + db + "/" + name + "/" + string(rune('0'+n)), Count: 10, Bytes: 1000})
		c.Count += 10
		c.Bytes += 1000
	}
	return c
}

// testCatalog: timeline a (100..200, segments of 10 s), gap, timeline b
// (300..400). Snapshots s1 (copy 110..120), s2 (150..160) on a, s3
// (310..315) on b.
func testCatalog() catalog.Catalog {
	var segsA, segsB []repo.SegmentInfo
	for t := uint32(100); t < 200; t += 10 {
		segsA = append(segsA, seg("a", t, t+9))
	}
	for t := uint32(300); t < 400; t += 10 {
		segsB = append(segsB, seg("b", t, t+9))
	}
	h := repo.History{Timelines: []repo.Timeline{timeline("a", "ferretdb", segsA...), timeline("b", "mongodb", segsB...)},
		Gaps: []repo.Gap{{Shard: "rs0", Before: ts(199, 1), After: ts(300, 1)}}}
	colls := []repo.CollectionManifest{coll("shop", "orders", 3), coll("shop", "items", 1), coll("crm", "people", 2)}
	view, _ := bson.Marshal(bson.D{{Key: "viewOn", Value: "orders"}, {Key: "pipeline", Value: bson.A{}}})
	mk := func(id string, start, end uint32) repo.Manifest {
		return repo.Manifest{ID: id, Shard: "rs0", Start: ts(start, 1), End: ts(end, 1), Collections: colls,
			Views: []repo.ViewManifest{{DB: "shop", Name: "big", Options: view}}}
	}
	sh := catalog.Derive("rs0", h, []repo.Manifest{mk("s1", 110, 120), mk("s2", 150, 160), mk("s3", 310, 315)})
	return catalog.Catalog{Shards: []catalog.Shard{sh}}
}

// when is a restore point of the test catalog: its oplog timestamps are
// small (seconds after 1970), which ParseWhen refuses as implausible.
func when(t *testing.T, s string) When {
	t.Helper()
	if ts, err := optime.Parse(s); err == nil {
		return When{TS: ts, Text: s}
	}
	w, err := ParseWhen(s)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestBuildChoosesSnapshotAndSegments(t *testing.T) {
	tests := []struct {
		to           string
		snap         string
		target       optime.Timestamp
		firstSeg     uint32 // first second of the first segment to read
		segs, chunks int
		flavor       source.Flavor
	}{
		{"125:1", "s1", ts(125, 1), 110, 2, 6, "ferretdb"},
		{"120:1", "s1", ts(120, 1), 110, 2, 6, "ferretdb"}, // the snapshot's own end
		{"159:5", "s1", ts(159, 5), 110, 5, 6, "ferretdb"}, // inside s2's copy: s2 is not consistent yet
		{"160:1", "s2", ts(160, 1), 150, 2, 6, "ferretdb"}, // s2's end: the newest snapshot wins
		{"199:1", "s2", ts(199, 1), 150, 5, 6, "ferretdb"}, // last entry before the gap
		{"latest", "s3", ts(399, 1), 310, 9, 6, "mongodb"}, // the newest point of all
		{"350:0", "s3", ts(350, 0), 310, 4, 6, "mongodb"},  // after the gap
		{"1970-01-01T00:02:50Z", "s2", ts(170, 1<<32-1), 150, 3, 6, "ferretdb"},
		{"1970-01-01T00:03:19Z", "s2", ts(199, 1), 150, 5, 6, "ferretdb"}, // the last second ends at its last entry
	}
	for _, tt := range tests {
		t.Run(tt.to, func(t *testing.T) {
			p, err := Build(testCatalog(), Request{To: when(t, tt.to)})
			if err != nil {
				t.Fatal(err)
			}
			if p.Snapshot.ID != tt.snap || p.Target != tt.target || p.Flavor != tt.flavor {
				t.Fatalf("snapshot %s target %s flavor %s, want %s %s %s", p.Snapshot.ID, p.Target, p.Flavor, tt.snap, tt.target, tt.flavor)
			}
			if len(p.Segments) != tt.segs || p.Segments[0].First.T != tt.firstSeg || p.Chunks != tt.chunks {
				t.Fatalf("%d segments from %s, %d chunks; want %d from %d, %d", len(p.Segments), p.Segments[0].First, p.Chunks, tt.segs, tt.firstSeg, tt.chunks)
			}
			if p.ReplayFrom != p.Snapshot.Start {
				t.Fatalf("replay from %s, want the snapshot's start %s", p.ReplayFrom, p.Snapshot.Start)
			}
		})
	}
}

func TestBuildOutsideWindows(t *testing.T) {
	tests := []struct{ to, want string }{
		{"50:1", "the first one after it is 1970-01-01T00:02:00Z (120:1)"},
		{"119:1", "the first one after it is 1970-01-01T00:02:00Z (120:1)"},
		{"250:1", "the last one before it is 1970-01-01T00:02:40Z (160:1) .. 1970-01-01T00:03:19Z (199:1) from snapshot s2, the first one after it is 1970-01-01T00:05:15Z (315:1)"},
		{"400:1", "the last one before it is"},
		{"1970-01-01T00:06:40Z", "in no restore window"},
	}
	for _, tt := range tests {
		_, err := Build(testCatalog(), Request{To: when(t, tt.to)})
		if !errors.Is(err, ErrOutsideWindows) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "rewind list") {
			t.Errorf("--to %s: error %v, want ErrOutsideWindows saying %q", tt.to, err, tt.want)
		}
	}
	_, err := Build(catalog.Catalog{}, Request{To: When{Latest: true}})
	if !errors.Is(err, ErrOutsideWindows) || !strings.Contains(err.Error(), "no restore window yet") {
		t.Errorf("empty repository: %v", err)
	}
}

func TestBuildNamespaces(t *testing.T) {
	type want struct {
		targets []string // source=>target of collections, in source order
		chunks  int
		views   []string
	}
	tests := []struct {
		name    string
		include []string
		rename  map[string]string
		want    want
	}{
		{"everything", nil, nil, want{[]string{"crm.people=>crm.people", "shop.items=>shop.items", "shop.orders=>shop.orders"}, 6, []string{"shop.big"}}},
		{"one collection reads only its chunks", []string{"shop.items"}, nil, want{[]string{"shop.items=>shop.items"}, 1, nil}},
		{"one database", []string{"shop.*"}, nil, want{[]string{"shop.items=>shop.items", "shop.orders=>shop.orders"}, 4, []string{"shop.big"}}},
		{"bare database name", []string{"crm"}, nil, want{[]string{"crm.people=>crm.people"}, 2, nil}},
		{"rename a database", []string{"shop"}, map[string]string{"shop": "shop_0930"},
			want{[]string{"shop.items=>shop_0930.items", "shop.orders=>shop_0930.orders"}, 4, []string{"shop_0930.big"}}},
		{"rename a collection", []string{"shop.orders"}, map[string]string{"shop.orders": "shop.orders_restored"},
			want{[]string{"shop.orders=>shop.orders_restored"}, 3, nil}},
		{"collection rename wins over its database's", nil, map[string]string{"shop": "s2", "shop.orders": "o.x"},
			want{[]string{"crm.people=>crm.people", "shop.items=>s2.items", "shop.orders=>o.x"}, 6, []string{"s2.big"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(testCatalog(), Request{To: When{Latest: true}, Include: tt.include, Rename: tt.rename})
			if err != nil {
				t.Fatal(err)
			}
			var got, views []string
			for _, c := range p.Collections {
				got = append(got, c.Source.String()+"=>"+c.Target.String())
			}
			for _, v := range p.Views {
				views = append(views, v.Target.String())
			}
			if strings.Join(got, " ") != strings.Join(tt.want.targets, " ") || p.Chunks != tt.want.chunks ||
				strings.Join(views, " ") != strings.Join(tt.want.views, " ") {
				t.Fatalf("got %v (%d chunks, views %v), want %+v", got, p.Chunks, views, tt.want)
			}
		})
	}
}

func TestViewOnFollowsRename(t *testing.T) {
	p, err := Build(testCatalog(), Request{To: When{Latest: true}, Include: []string{"shop"},
		Rename: map[string]string{"shop.orders": "shop.orders_old"}})
	if err != nil {
		t.Fatal(err)
	}
	if on := p.Views[0].Options.Lookup("viewOn").StringValue(); on != "orders_old" {
		t.Fatalf("viewOn = %q, want orders_old", on)
	}
}

func TestBuildBadNamespaces(t *testing.T) {
	tests := []struct {
		name    string
		include []string
		rename  map[string]string
		want    string
	}{
		{"unknown database", []string{"nope"}, nil, "--ns nope matches nothing in snapshot s3 (it holds databases crm, shop) nor in the oplog replayed up to 399:1"},
		{"unknown collection", []string{"shop.nope"}, nil, "--ns shop.nope matches nothing"},
		{"wildcard inside a name", []string{"shop.ord*"}, nil, "wildcards are only allowed"},
		{"system database", []string{"admin"}, nil, "system database"},
		{"rename of something not restored", []string{"shop"}, map[string]string{"crm": "crm2"}, "--rename crm: crm is not among the namespaces being restored (add it with --ns)"},
		{"rename of a name found nowhere", nil, map[string]string{"nope": "nope2"}, "--rename nope matches nothing"},
		{"rename a database onto a collection", nil, map[string]string{"shop": "a.b"}, "rename a database to a database"},
		{"two sources onto one target", nil, map[string]string{"shop.items": "shop.orders"}, "would both be restored as shop.orders"},
		{"bad target name", nil, map[string]string{"shop": "a b"}, `database name "a b" holds a character MongoDB forbids there`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(testCatalog(), Request{To: When{Latest: true}, Include: tt.include, Rename: tt.rename})
			if err == nil && len(p.unmatched) > 0 {
				// Left for Resolve, which finds it nowhere in the oplog either.
				err = p.unmatchedError()
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestParseWhen(t *testing.T) {
	good := map[string]When{
		"latest":                    {Latest: true},
		"1700000000:5":              {TS: ts(1700000000, 5)},
		"2023-11-14T22:13:20Z":      {TS: ts(1700000000, 1<<32-1), Clock: true},
		"2023-11-14T23:13:20+01:00": {TS: ts(1700000000, 1<<32-1), Clock: true},
		// RFC 3339 allows a lower-case t and z, and a space for the t.
		"2023-11-14t22:13:20z":        {TS: ts(1700000000, 1<<32-1), Clock: true},
		"2023-11-14 22:13:20Z":        {TS: ts(1700000000, 1<<32-1), Clock: true},
		"2023-11-14t23:13:20.5+01:00": {TS: ts(1700000000, 1<<32-1), Clock: true},
	}
	for in, want := range good {
		got, err := ParseWhen(in)
		got.Text = ""
		if err != nil || got != want {
			t.Errorf("ParseWhen(%q) = %+v, %v; want %+v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "yesterday", "12", "1:2:3", "-1:0", "0:0", "1969-12-31T00:00:00Z"} {
		if _, err := ParseWhen(in); err == nil || !strings.Contains(err.Error(), "RFC 3339") && !strings.Contains(err.Error(), "out of range") {
			t.Errorf("ParseWhen(%q) error = %v, want one listing the accepted forms", in, err)
		}
	}
	// SECONDS:INCREMENT with seconds before 2000 is no real deployment's
	// oplog: most often a clock time, which once read as 9 s after 1970.
	for in, says := range map[string]string{
		"09:30": `"09:30" looks like a clock time`, "9:30": "looks like a clock time", "0:0": `"0:0" looks like a clock time`,
		"23:59:59": "looks like a clock time", "1234567:5": "second 1234567 is 1970-01-15T06:56:07Z, before any real deployment's oplog",
		"946684799:1": "before any real deployment's oplog",
	} {
		_, err := ParseWhen(in)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "to" || !strings.Contains(err.Error(), says) ||
			!strings.Contains(err.Error(), "give a full RFC 3339 time such as 2026-11-29T09:30:00Z, or an oplog timestamp SECONDS:INCREMENT as `rewind list` shows them") {
			t.Errorf("ParseWhen(%q) error = %v, want one saying %q and what to give instead", in, err, says)
		}
	}
	if w, err := ParseWhen("946684800:0"); err != nil || w.TS != ts(946684800, 0) {
		t.Errorf("ParseWhen of 2000-01-01's first second: %+v, %v", w, err)
	}
	// A time without a zone is ambiguous: the error says what to add.
	for _, in := range []string{"2023-11-14T22:13:20", "2023-11-14t22:13:20.25", "2023-11-14 22:13:20"} {
		_, err := ParseWhen(in)
		var inv *InvalidError
		if !errors.As(err, &inv) || inv.Field != "to" || !strings.Contains(err.Error(), "add Z or an offset") ||
			!strings.Contains(err.Error(), "2023-11-14T22:13:20") {
			t.Errorf("ParseWhen(%q) error = %v, want a hint to add Z or an offset", in, err)
		}
	}
}

func TestStoredUserDocument(t *testing.T) {
	raw, _ := bson.Marshal(bson.D{{Key: "_id", Value: "shop.ann"}, {Key: "user", Value: "ann"}, {Key: "db", Value: "shop"},
		{Key: "credentials", Value: bson.D{{Key: "SCRAM-SHA-256", Value: bson.D{}}}}, {Key: "mechanisms", Value: bson.A{"SCRAM-SHA-256"}}})
	var keys []string
	for _, e := range stored(raw) {
		keys = append(keys, e.Key)
	}
	if strings.Join(keys, ",") != "_id,user,db,credentials" {
		t.Fatalf("stored user keeps %v; want the fields the server stores", keys)
	}
}

// A name the snapshot does not hold is an error at once when no oplog is
// replayed (nothing could create it).
func TestUnknownNamespaceWithoutOplog(t *testing.T) {
	m := repo.Manifest{ID: "s1", Shard: "rs0", Start: ts(5, 1), End: ts(5, 1),
		Collections: []repo.CollectionManifest{coll("shop", "orders", 1)}}
	cat := catalog.Catalog{Shards: []catalog.Shard{catalog.Derive("rs0", repo.History{}, []repo.Manifest{m})}}
	_, err := Build(cat, Request{To: When{Latest: true}, Include: []string{"shop.nope"}})
	if err == nil || !strings.Contains(err.Error(), "--ns shop.nope matches nothing") {
		t.Fatalf("error %v", err)
	}
	p, err := Build(cat, Request{To: When{Latest: true}, Include: []string{"shop.orders"}})
	if err != nil || len(p.Segments) != 0 || len(p.Collections) != 1 {
		t.Fatalf("plan %+v, %v", p, err)
	}
}

// A flavor the repository records but this rewind does not know is refused
// while planning, naming it, before anything is written.
func TestBuildRefusesAnUnknownFlavor(t *testing.T) {
	cat := testCatalog()
	cat.Shards[0].Timelines[1].Info.Flavor = "documentdb"
	_, err := Build(cat, Request{To: when(t, "latest")})
	if err == nil || !strings.Contains(err.Error(), `"documentdb"`) {
		t.Fatalf("Build over a timeline of flavor documentdb: %v", err)
	}
}

// A snapshot that holds no collection (a new deployment's base snapshot,
// with no oplog after it yet) plans: the plan is empty, which is the
// deployment's exact state then. A --ns names nothing in it, and says the
// snapshot holds no database.
func TestBuildEmptySnapshot(t *testing.T) {
	m := repo.Manifest{ID: "s0", Shard: "rs0", Start: ts(5, 1), End: ts(5, 1), FromEmptyOplog: true}
	cat := catalog.Catalog{Shards: []catalog.Shard{catalog.Derive("rs0", repo.History{}, []repo.Manifest{m})}}
	p, err := Build(cat, Request{To: When{Latest: true}})
	if err != nil || len(p.Collections)+len(p.Views) != 0 || !p.Empty() {
		t.Fatalf("plan of an empty snapshot: %+v, %v; want an empty plan", p, err)
	}
	_, err = Build(cat, Request{To: When{Latest: true}, Include: []string{"shop"}})
	if err == nil || !strings.Contains(err.Error(), "--ns shop matches nothing in snapshot s0 (it holds no database)") {
		t.Fatalf("--ns shop in an empty snapshot: %v", err)
	}
}

// The entry at a snapshot's start is left out of the replay only where the
// copy is sure to have seen it: FerretDB, not from an empty oplog's clock
// anchor. MongoDB's copy reads at majority, and a manifest that names no
// flavor came from MongoDB.
func TestStartInData(t *testing.T) {
	tests := []struct {
		flavor    string
		fromEmpty bool
		want      bool
	}{
		{"ferretdb", false, true},
		{"ferretdb", true, false},
		{"mongodb", false, false},
		{"", false, false},
	}
	for _, tt := range tests {
		m := repo.Manifest{Flavor: tt.flavor, FromEmptyOplog: tt.fromEmpty}
		if got := startInData(m); got != tt.want {
			t.Errorf("flavor %q, from an empty oplog %v: startInData %v, want %v", tt.flavor, tt.fromEmpty, got, tt.want)
		}
	}
}
