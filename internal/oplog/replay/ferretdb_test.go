package replay_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// TestReplayServerOplog replays the test server's own oplog of a workload
// (inserts, operator updates, replacements, deletes, every value kind it
// takes) into renamed databases and checks every document byte for byte,
// then replays the same window a second time over the result (as over a
// fuzzy snapshot) and checks again. On FerretDB this exercises the
// "ferretdb" flavor: its $v:1 whole-document $set entries.
func TestReplayServerOplog(t *testing.T) {
	srv := testserver.Start(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	c := srv.Client()
	cfg := srv.Workload(7)
	cfg.Ops, cfg.Databases, cfg.Collections = 400, 2, 2
	wst, err := workload.Run(ctx, c, cfg, nil)
	if err != nil {
		t.Fatalf("workload: %v", err)
	}
	entries := oplogOf(ctx, t, c, srv.Prefix())
	t.Logf("workload %+v; %d oplog entries", wst, len(entries))

	flavor := source.MongoDB
	if srv.FerretDB() {
		flavor = source.FerretDB
	}
	target := srv.DB("t")
	a := &replay.Applier{Client: c, Flavor: flavor, BatchSize: 64,
		Map: func(db, coll string) (string, string, bool) {
			if !strings.HasPrefix(db, srv.Prefix()) {
				return "", "", false
			}
			return target + strings.TrimPrefix(db, srv.Prefix()), coll, true
		}}
	for round := 1; round <= 2; round++ {
		st, err := a.Apply(ctx, entries)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		t.Logf("round %d: %+v", round, st)
		for _, ns := range workload.Namespaces(cfg) {
			tdb, tcoll, _ := a.Map(ns.DB, ns.Coll)
			want := allDocs(ctx, t, c.Database(ns.DB).Collection(ns.Coll))
			got := allDocs(ctx, t, c.Database(tdb).Collection(tcoll))
			if len(want) != len(got) {
				t.Fatalf("round %d: %s has %d documents, want %d", round, ns, len(got), len(want))
			}
			for i := range want {
				if string(want[i]) != string(got[i]) {
					t.Fatalf("round %d: %s document %d:\n got %s\nwant %s", round, ns, i, got[i], want[i])
				}
			}
		}
	}
}

// oplogOf reads the entries of local.oplog.rs on databases with prefix (and
// admin commands), in order.
func oplogOf(ctx context.Context, t *testing.T, c *mongo.Client, prefix string) []bson.Raw {
	cur, err := c.Database("local").Collection("oplog.rs").Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		t.Fatalf("read oplog: %v", err)
	}
	defer cur.Close(ctx)
	var out []bson.Raw
	for cur.Next(ctx) {
		// admin.$cmd holds transactions and batched writes on a real
		// replica set; the Applier's Map keeps only the prefixed namespaces.
		if ns, _ := cur.Current.Lookup("ns").StringValueOK(); strings.HasPrefix(ns, prefix) || ns == "admin.$cmd" {
			out = append(out, append(bson.Raw(nil), cur.Current...))
		}
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read oplog: %v", err)
	}
	return out
}

func allDocs(ctx context.Context, t *testing.T, coll *mongo.Collection) []bson.Raw {
	cur, err := coll.Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		t.Fatalf("read %s: %v", coll.Name(), err)
	}
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read %s: %v", coll.Name(), err)
	}
	return out
}

// BenchmarkReplay measures the replay rate into the test server, for plain
// inserts and for $v:2 updates of existing documents (one batched read per
// namespace and batch, then one bulk write). Keys are strings: FerretDB
// v1.24 finds a document by _id through its index only for string and
// ObjectId keys and scans the collection for every other type.
func BenchmarkReplay(b *testing.B) {
	srv := testserver.Start(b)
	ctx, cancel := context.WithTimeout(b.Context(), 10*time.Minute)
	defer cancel()
	const n = 1000 // entries per Apply for inserts
	const u = 200  // for updates: FerretDB takes ~30 ms per replaceOne by _id on a few thousand documents
	db := srv.DB("bench")
	a := &replay.Applier{Client: srv.Client()}
	next := 0
	inserts := func() []bson.Raw {
		es := make([]bson.Raw, n)
		for i := range es {
			es[i] = mustMarshal(b, bson.D{{Key: "op", Value: "i"}, {Key: "ns", Value: db + ".c"},
				{Key: "o", Value: bson.D{{Key: "_id", Value: fmt.Sprintf("k%07d", next)}, {Key: "name", Value: fmt.Sprintf("doc %d", next)}, {Key: "n", Value: 0}, {Key: "tags", Value: bson.A{"a", "b"}}}}})
			next++
		}
		return es
	}
	b.Run("insert", func(b *testing.B) {
		total, start := 0, time.Now()
		for b.Loop() {
			es := inserts()
			if _, err := a.Apply(ctx, es); err != nil {
				b.Fatal(err)
			}
			total += len(es)
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "entries/s")
	})
	b.Run("update", func(b *testing.B) {
		total, start, round := 0, time.Now(), 0
		for b.Loop() {
			round++
			es := make([]bson.Raw, u)
			for i := range es {
				es[i] = mustMarshal(b, bson.D{{Key: "op", Value: "u"}, {Key: "ns", Value: db + ".c"},
					{Key: "o", Value: bson.D{{Key: "$v", Value: 2}, {Key: "diff", Value: bson.D{{Key: "u", Value: bson.D{{Key: "n", Value: round}}}}}}},
					{Key: "o2", Value: bson.D{{Key: "_id", Value: fmt.Sprintf("k%07d", i%next)}}}})
			}
			if _, err := a.Apply(ctx, es); err != nil {
				b.Fatal(err)
			}
			total += len(es)
		}
		b.ReportMetric(float64(total)/time.Since(start).Seconds(), "entries/s")
	})
}

func mustMarshal(t testing.TB, d bson.D) bson.Raw {
	raw, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
