package restore_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// A snapshot taken with no agent, while the workload writes during its
// copy, captures its own oplog range and ends at the oplog's newest entry
// after the copy; restored to that end, it is exactly the source's state
// then. (On FerretDB the end comes from the range capture's first read
// instead of a separate lookup: this pins that they agree.)
func TestSnapshotAloneRestoresToItsEnd(t *testing.T) {
	ctx := context.Background()
	srv := testserver.Start(t)
	r, src := newRepoAndSource(t, srv)

	base := srv.Workload(21)
	// Data for the copy to take a while (some documents near 1 MiB); only
	// the live databases below are restored and compared.
	base.Prefix, base.Ops, base.Databases, base.Collections, base.LargeEvery = srv.DB("al"), 400, 2, 2, 40
	if _, err := workload.Run(ctx, srv.Client(), base, nil); err != nil {
		t.Fatal(err)
	}
	// While the snapshot runs, one write at a time, each followed by a mark:
	// every oplog entry is then the timestamp of a mark.
	live := base
	live.KeepData, live.Ops, live.Seed, live.BatchSize, live.Duration = true, 0, 22, 1, time.Hour
	live.Prefix = srv.DB("al2")
	live.Databases, live.Collections, live.LargeEvery = 1, 2, 0
	dbs := workload.Databases(live)
	rec := &oracle.Recorder{Client: srv.Client(), Filter: oracle.Filter{Include: dbs}}
	wctx, stopWriting := context.WithCancel(ctx)
	defer stopWriting()
	writing := make(chan error, 1)
	go func() { _, err := workload.Run(wctx, srv.Client(), live, rec.OnBatch); writing <- err }()
	// Let the live writes get going, so that some land during the copy.
	// Each write is followed by a mark that hashes the live databases, so
	// on a loaded machine this takes a while: the bound only guards a hang.
	waitFor(t, 2*time.Minute, "the live workload writes", func() bool {
		var n int64
		for _, ns := range workload.Namespaces(live) {
			c, _ := srv.Client().Database(ns.DB).Collection(ns.Coll).EstimatedDocumentCount(ctx)
			n += c
		}
		return n >= 5
	})

	m, err := snapshot.Take(ctx, src, r, snapshot.Options{Parallel: 1, ChunkBytes: 16 << 10, Log: testLogger(t)})
	stopWriting()
	if werr := <-writing; werr != nil && !errors.Is(werr, context.Canceled) {
		t.Fatalf("workload: %v", werr)
	}
	must(t, err)
	// Stopping the workload can cut the mark of its last write short (the
	// stop cancels the recording): record the state after the last entry,
	// now that nothing writes, so every write has a mark.
	newest, err := oracle.LastOplogTS(ctx, srv.Client())
	must(t, err)
	if n := len(rec.Marks); n == 0 || rec.Marks[n-1].TS != newest {
		_, err := rec.Record(ctx, workload.Batch{})
		must(t, err)
	}
	if !m.Start.Before(m.End) {
		t.Fatalf("snapshot start %s, end %s: want start < end while the workload wrote", m.Start, m.End)
	}
	// The state at the end is the one after the last write at or before it
	// (on a shared replica set other entries may come between).
	var mark *oracle.Mark
	for i := range rec.Marks {
		if !m.End.Before(rec.Marks[i].TS) {
			mark = &rec.Marks[i]
		}
	}
	if mark == nil {
		t.Fatalf("the workload wrote nothing before the snapshot's end %s (%d marks)", m.End, len(rec.Marks))
	}
	during := 0
	for _, mk := range rec.Marks {
		if m.Start.Before(mk.TS) && !m.End.Before(mk.TS) {
			during++
		}
	}
	t.Logf("snapshot %s .. %s: %d writes between start and end", m.Start, m.End, during)

	srv2 := testserver.Start(t)
	rename := map[string]string{}
	for i, db := range dbs {
		rename[db] = srv2.DB("al" + string(rune('a'+i)))
	}
	fx := &fixture{repo: r}
	if _, _, err := fx.restoreTo(t, srv2.Client(), restore.Request{To: at(m.End), Include: dbs, Rename: rename}, false); err != nil {
		t.Fatal(err)
	}
	if err := oracle.Compare(ctx, srv2.Client(), *mark, oracle.Filter{Include: dbs, Rename: rename}); err != nil {
		t.Fatalf("restored to the snapshot's end %s (mark %d at %s): %v\n%s", m.End, mark.N, mark.TS, err, explainMismatch(srv, err, rec.Marks, mark.N))
	}
}

// explainMismatch lists what the source's oplog holds for the document a
// comparison found different, and the marks around it: enough to tell a
// wrong end point from a wrong replay when the test fails.
func explainMismatch(srv *testserver.Server, err error, marks []oracle.Mark, near int) string {
	var mm *oracle.Mismatch
	if !errors.As(err, &mm) || mm.ID == "" || mm.ID == "?" {
		return ""
	}
	var id bson.RawValue
	var wrap bson.Raw
	if e := bson.UnmarshalExtJSON([]byte(`{"v":`+mm.ID+`}`), true, &wrap); e != nil {
		return "cannot parse the _id: " + e.Error()
	}
	id = wrap.Lookup("v")
	filter := bson.D{{Key: "$or", Value: bson.A{bson.D{{Key: "o._id", Value: id}}, bson.D{{Key: "o2._id", Value: id}}}}}
	cur, e := srv.Client().Database("local").Collection("oplog.rs").Find(context.Background(), filter)
	if e != nil {
		return "cannot read the oplog: " + e.Error()
	}
	var out []string
	for cur.Next(context.Background()) {
		ts, _ := optime.OfEntry(cur.Current)
		op, _ := cur.Current.Lookup("op").StringValueOK()
		out = append(out, fmt.Sprintf("entry %s op %s", ts, op))
	}
	_ = cur.Close(context.Background())
	for _, mk := range marks {
		if mk.N >= near-3 && mk.N <= near+3 {
			out = append(out, fmt.Sprintf("mark %d at %s", mk.N, mk.TS))
		}
	}
	return strings.Join(out, "\n")
}
