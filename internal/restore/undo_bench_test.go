package restore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// BenchmarkUndoDelete measures `undo` of a deleteMany of 10,000 documents
// (of 20,000 in one collection; $REWIND_BENCH_DOCS=N: N/2 of N) against the
// live state after it, and, in the same run, a full restore of that
// collection as it was before the delete into an empty database (what one
// would do without undo). The repository is written by hand: one snapshot
// of the collection, then one delete entry per document, as the server
// logs a deleteMany.
//
//	go test -run '^$' -bench UndoDelete -benchtime 1x -timeout 30m ./internal/restore/
func BenchmarkUndoDelete(b *testing.B) {
	total, deletes := 20000, 10000
	if n, err := strconv.Atoi(os.Getenv("REWIND_BENCH_DOCS")); err == nil && n > 0 {
		total, deletes = n, n/2
	}
	srv := testserver.Start(b)
	ctx := context.Background()
	c := srv.Client()
	db := srv.DB("bu")
	var docs []bson.D
	var entries []bson.D
	for i := range total {
		docs = append(docs, bson.D{{Key: "_id", Value: int64(i)}, {Key: "grp", Value: int32(i % 2)},
			{Key: "name", Value: fmt.Sprintf("item %06d", i)}, {Key: "qty", Value: int32(i % 97)}, {Key: "tags", Value: bson.A{"a", "b"}}})
		if i%2 == 1 && len(entries) < deletes {
			entries = append(entries, rt.Delete(db+".items", int64(i)))
		}
	}
	r := rt.New(b, rt.Spec{Flavor: "mongodb", Entries: entries, Collections: []rt.Collection{{DB: db, Name: "items", Docs: docs}}})
	quiet := restore.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	target, err := restore.Use(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		// The live state after the delete, written directly (replaying
		// 10,000 deletes by _id takes FerretDB minutes: each one scans the
		// collection).
		var left []any
		for i, d := range docs {
			if i%2 == 0 || i/2 >= len(entries) {
				left = append(left, d)
			}
		}
		if _, err := c.Database(db).Collection("items").InsertMany(ctx, left); err != nil {
			b.Fatal(err)
		}

		// A full restore of the collection as it was before the delete.
		began := time.Now()
		p, err := restore.Prepare(ctx, r.Repository, restore.Request{To: restore.When{TS: rt.EntryTS(-1)}, Target: "t",
			Include: []string{db + ".items"}, Rename: map[string]string{db: db + "_full"}})
		if err != nil {
			b.Fatal(err)
		}
		full, err := p.Execute(ctx, target, quiet)
		p.Release()
		if err != nil {
			b.Fatal(err)
		}
		fullTime := time.Since(began)

		b.StartTimer()
		began = time.Now()
		u, err := restore.PrepareUndo(ctx, r.Repository, restore.UndoRequest{From: restore.When{TS: rt.EntryTS(-1)}, To: restore.When{Latest: true},
			Include: []string{db + ".items"}, Target: "t"})
		if err != nil {
			b.Fatal(err)
		}
		rep, err := u.Execute(ctx, target, quiet)
		u.Release()
		if err != nil {
			b.Fatal(err)
		}
		undoTime := time.Since(began)
		b.StopTimer()
		if rep.Reinserted != int64(len(entries)) {
			b.Fatalf("undo re-inserted %d documents, want %d: %+v", rep.Reinserted, len(entries), rep.UndoCounts)
		}
		b.ReportMetric(undoTime.Seconds(), "undo-s")
		b.ReportMetric(fullTime.Seconds(), "full-restore-s")
		b.Logf("undo of a %d-document delete in a %d-document collection: %s (%v); full restore of the collection (%d documents): %s (%v)",
			len(entries), total, undoTime.Round(time.Millisecond), rep.Phases, full.Documents, fullTime.Round(time.Millisecond), full.Phases)
		b.StartTimer()
	}
}
