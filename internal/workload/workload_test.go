package workload_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// TestOplogHasEveryWrite checks that the server's oplog holds one entry per
// acknowledged write of the workload, in order, with strictly increasing
// timestamps: what capture relies on.
func TestOplogHasEveryWrite(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	cfg := s.Workload(7)
	cfg.Ops = 400
	cfg.LargeEvery = 150
	cfg.LargeSize = 200 << 10
	var batches []workload.Batch
	st, err := workload.Run(ctx, s.Client(), cfg, func(_ context.Context, b workload.Batch) error {
		batches = append(batches, b)
		return nil
	})
	if err != nil {
		t.Fatalf("run workload: %v", err)
	}
	if st.Ops != 400 || st.Writes() != 400 {
		t.Fatalf("stats %+v: want 400 operations, all writes", st)
	}
	if st.Inserts == 0 || st.Updates == 0 || st.Replaces == 0 || st.Deletes == 0 {
		t.Fatalf("stats %+v: want every kind of operation", st)
	}
	if len(batches) != st.Batches || batches[len(batches)-1].Writes != st.Writes() {
		t.Fatalf("batches %d (last %+v), stats %+v", len(batches), batches[len(batches)-1], st)
	}

	counts := map[string]int{}
	var last optime.Timestamp
	cur, err := s.Client().Database("local").Collection("oplog.rs").Find(ctx, bson.D{},
		options.Find().SetSort(bson.D{{Key: "$natural", Value: 1}}))
	if err != nil {
		t.Fatalf("read oplog: %v", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		ns, _ := cur.Current.Lookup("ns").StringValueOK()
		if !strings.HasPrefix(ns, cfg.Prefix) {
			continue
		}
		op := cur.Current.Lookup("op").StringValue()
		if op == "c" || op == "n" {
			continue // DDL (real servers only) and no-ops are not the workload's writes
		}
		t1, i1 := cur.Current.Lookup("ts").Timestamp()
		ts := optime.Timestamp{T: t1, I: i1}
		if !ts.After(last) {
			t.Fatalf("oplog ts %s after %s: not strictly increasing", ts, last)
		}
		last = ts
		counts[op]++
	}
	if err := cur.Err(); err != nil {
		t.Fatalf("read oplog: %v", err)
	}
	want := map[string]int{"i": st.Inserts, "u": st.Updates + st.Replaces, "d": st.Deletes}
	for op, n := range want {
		if counts[op] != n {
			t.Errorf("oplog has %d %q entries for the workload, want %d (all: %v)", counts[op], op, n, counts)
		}
	}
}

// TestDurationAndRate checks that a rate-limited run stops on time and keeps
// close to its rate.
func TestDurationAndRate(t *testing.T) {
	s := testserver.Start(t)
	cfg := s.Workload(1)
	cfg.Duration = 2 * time.Second
	cfg.Rate = 20
	cfg.BatchSize = 10
	st, err := workload.Run(context.Background(), s.Client(), cfg, nil)
	if err != nil {
		t.Fatalf("run workload: %v", err)
	}
	// 40 due, plus at most one batch started before the deadline.
	if st.Ops < 20 || st.Ops > 55 {
		t.Fatalf("%d operations in %s at 20/s: want about 40", st.Ops, st.Elapsed)
	}
}

func TestNamesAreValid(t *testing.T) {
	cfg := workload.Config{Prefix: "rwdeadbeef_", Databases: 8, Collections: 10}
	seen := map[string]bool{}
	for _, ns := range workload.Namespaces(cfg) {
		if seen[ns.String()] {
			t.Fatalf("duplicate namespace %s", ns)
		}
		seen[ns.String()] = true
		for _, r := range ns.DB {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
				t.Fatalf("database name %q has %q, refused by FerretDB", ns.DB, r)
			}
		}
		if len(ns.DB) > 63 || strings.HasPrefix(ns.Coll, ".") || strings.Contains(ns.Coll, "$") {
			t.Fatalf("invalid namespace %q", ns)
		}
	}
}

// TestLargeDocuments writes documents near 1 MiB and reads them back.
func TestLargeDocuments(t *testing.T) {
	s := testserver.Start(t)
	ctx := context.Background()
	cfg := s.Workload(3)
	cfg.Ops, cfg.LargeEvery, cfg.Databases, cfg.Collections = 12, 3, 1, 2
	st, err := workload.Run(ctx, s.Client(), cfg, nil)
	if err != nil {
		t.Fatalf("run workload: %v", err)
	}
	var biggest int
	for _, ns := range workload.Namespaces(cfg) {
		cur, err := s.Client().Database(ns.DB).Collection(ns.Coll).Find(ctx, bson.D{})
		if err != nil {
			t.Fatal(err)
		}
		for cur.Next(ctx) {
			biggest = max(biggest, len(cur.Current))
		}
		cur.Close(ctx)
	}
	if biggest < 900<<10 || biggest > 1<<20+64<<10 {
		t.Fatalf("largest document %d bytes, want near 1 MiB (stats %+v)", biggest, st)
	}
}
