package restore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// A restore that stops says what the target holds and what to do, in the
// one restore path (so the CLI, the API's job and a trial restore say it):
//   - interrupted once the load has begun (SIGINT cancels the command's
//     context): a partial restore of the named namespaces; re-running with
//     --drop, as the error says, gives the backup's exact state;
//   - stopped before its first write: nothing was written;
//   - a storage error mid-load (a chunk gone): a partial restore again.
func TestStoppedRestoreSaysWhatTheTargetHolds(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.DB("pa")
	var orders []bson.D
	for i := range 1000 {
		orders = append(orders, bson.D{{Key: "_id", Value: i}, {Key: "sku", Value: fmt.Sprintf("sku-%04d", i)}})
	}
	items := []bson.D{{{Key: "_id", Value: "i1"}, {Key: "n", Value: 1}}}
	r := rt.New(t, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: db, Name: "orders", Docs: orders}, {DB: db, Name: "items", Docs: items}},
		Entries: []bson.D{
			rt.Insert(db+".items", bson.D{{Key: "_id", Value: "i2"}, {Key: "n", Value: 2}}),
			rt.Insert(db+".events", bson.D{{Key: "_id", Value: 1}}), // created after the snapshot
		}})
	target := srv.Client()
	partial := fmt.Sprintf("the target holds a partial restore of %s.events, %s.items, %s.orders; run the same restore again with --drop", db, db, db)

	// Interrupted during the load: one document per insert keeps it going
	// long enough to be caught there, on any server.
	p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t"})
	prog := &restore.Progress{}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := p.Execute(cctx, use(t, target), restore.Options{Progress: prog, BatchBytes: 1, Log: testLogger(t)})
		done <- err
	}()
	var err error
	deadline := time.Now().Add(time.Minute)
wait:
	for {
		select {
		case err = <-done:
			t.Fatalf("the restore ended (%v) before its load phase was seen", err)
		default:
		}
		if prog.Phase() == "load" {
			cancel()
			err = <-done
			break wait
		}
		if time.Now().After(deadline) {
			t.Fatalf("the restore did not reach its load phase within a minute (phase %q)", prog.Phase())
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if !errors.Is(err, context.Canceled) || !errors.Is(err, restore.ErrPartial) || !strings.Contains(err.Error(), partial) {
		t.Fatalf("interrupted restore: %v; want it to say %q", err, partial)
	}
	t.Logf("interrupted: %v", err)
	want := expectedDump(t, db, map[string][]bson.D{"orders": orders,
		"items":  append(append([]bson.D{}, items...), bson.D{{Key: "_id", Value: "i2"}, {Key: "n", Value: 2}}),
		"events": {{{Key: "_id", Value: 1}}}})
	if got := dump(t, target, db); got == want {
		t.Fatal("the interrupted restore left the whole backup in the target")
	}
	// What the error says to do.
	p = prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Drop: true})
	if _, err := p.Execute(ctx, use(t, target), restore.Options{Log: testLogger(t)}); err != nil {
		t.Fatalf("the same restore again with --drop: %v", err)
	}
	if got := dump(t, target, db); got != want {
		t.Fatalf("after the re-run with --drop the target is\n%s\nwant the backup's\n%s", got, want)
	}

	// Stopped before its first write.
	before := dump(t, target, db)
	gone, stop := context.WithCancel(ctx)
	stop()
	p = prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t", Drop: true})
	_, err = p.Execute(gone, use(t, target), restore.Options{Log: testLogger(t)})
	if !errors.Is(err, context.Canceled) || errors.Is(err, restore.ErrPartial) || !strings.Contains(err.Error(), "nothing was written to the target") {
		t.Fatalf("restore stopped before its first write: %v; want it to say nothing was written", err)
	}
	if after := dump(t, target, db); after != before {
		t.Fatalf("the restore stopped before its first write changed the target")
	}

	// A chunk gone from the repository: the load fails after --drop and the
	// creates have written.
	key := r.Snapshot.Collections[0].Chunks[0].Key
	must(t, os.Remove(filepath.Join(strings.TrimPrefix(r.URL, "file://"), key)))
	_, err = p.Execute(ctx, use(t, target), restore.Options{Log: testLogger(t)})
	if !errors.Is(err, restore.ErrPartial) || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), partial) {
		t.Fatalf("restore with a chunk gone: %v; want it to name %s and say %q", err, key, partial)
	}
}
