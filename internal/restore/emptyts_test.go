package restore_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// writeMonitor records the write commands a client sends to one database.
type writeMonitor struct {
	db   string
	mu   sync.Mutex
	sent []bson.Raw
}

func (m *writeMonitor) started(_ context.Context, e *event.CommandStartedEvent) {
	switch e.CommandName {
	case "insert", "update", "delete":
		if e.DatabaseName == m.db {
			m.mu.Lock()
			m.sent = append(m.sent, append(bson.Raw(nil), e.Command...))
			m.mu.Unlock()
		}
	}
}

// commands are the recorded commands by name, each with whether it
// carried bypassEmptyTsReplacement: true.
func (m *writeMonitor) commands() map[string][]bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string][]bool{}
	for _, c := range m.sent {
		name := c.Index(0).Key()
		b, _ := c.Lookup("bypassEmptyTsReplacement").BooleanOK()
		out[name] = append(out[name], b)
	}
	m.sent = nil
	return out
}

func monitored(t *testing.T, srv *testserver.Server, db string) (*mongo.Client, *writeMonitor) {
	t.Helper()
	m := &writeMonitor{db: db}
	c, err := mongo.Connect(options.Client().ApplyURI(srv.URI()).SetMonitor(&event.CommandMonitor{Started: m.started}))
	must(t, err)
	t.Cleanup(func() { disconnect(c) })
	return c, m
}

var emptyTS = bson.Timestamp{}

// A top-level Timestamp(0, 0) survives a restore byte for byte, loaded from
// the snapshot and replayed from the oplog (insert, replacement, and a
// delete in the same bulk write), and the writes carry
// bypassEmptyTsReplacement exactly when the target's server takes it. The
// test server stores such values as written and refuses the field
// ("unknown field"): there the field must not be sent. Against a MongoDB
// that replaces them and lacks the field (before 5.0.29, 6.0.17, 7.0.13)
// the value cannot survive: the test checks that and skips, naming it.
func TestEmptyTimestampSurvives(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.DB("ets")
	snapDocs := []bson.D{
		{{Key: "_id", Value: 1}, {Key: "ts", Value: emptyTS}, {Key: "in", Value: bson.D{{Key: "ts", Value: emptyTS}}}},
		{{Key: "_id", Value: 3}, {Key: "gone", Value: true}},
	}
	inserted := bson.D{{Key: "_id", Value: 2}, {Key: "ts", Value: emptyTS}}
	replaced := bson.D{{Key: "_id", Value: 1}, {Key: "ts", Value: emptyTS}, {Key: "v", Value: 2}}
	r := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: db, Name: "c", Docs: snapDocs}},
		Entries: []bson.D{rt.Insert(db+".c", inserted), rt.Update(db+".c", 1, replaced), rt.Delete(db+".c", 3)}})
	client, mon := monitored(t, srv, db)
	target := use(t, client)
	bypass := target.Server.BypassEmptyTsReplacement
	t.Logf("target server %s (FerretDB %v): bypassEmptyTsReplacement %v", target.Server.Version, target.Server.FerretDB, bypass)
	if target.Server.FerretDB && bypass {
		t.Fatal("FerretDB refuses bypassEmptyTsReplacement, yet the restore would send it")
	}

	// The load path alone: the snapshot's own point.
	p := prepare(t, r, restore.Request{To: restore.When{TS: r.Snapshot.End}, Target: "t"})
	_, err := p.Execute(ctx, target, restore.Options{Log: testLogger(t)})
	must(t, err)
	loads := mon.commands()
	if len(loads["insert"]) == 0 {
		t.Fatalf("no insert command seen for the load: %v", loads)
	}
	for _, sent := range loads["insert"] {
		if sent != bypass {
			t.Fatalf("the load's insert carried bypassEmptyTsReplacement=%v; the server takes it: %v", sent, bypass)
		}
	}
	got := docs(t, client, db, "c")
	if !bypass && !target.Server.FerretDB && got[0].String() != marshal(t, snapDocs[0]).String() {
		t.Skipf("MongoDB %s replaced the empty timestamp (%s) and has no bypassEmptyTsReplacement: the documented limit of servers before 5.0.29, 6.0.17 and 7.0.13", target.Server.Version, got[0])
	}
	wantDocs(t, got, snapDocs...)

	// The replay path: latest, over again.
	must(t, client.Database(db).Drop(ctx))
	p = prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t"})
	rep, err := p.Execute(ctx, target, restore.Options{Log: testLogger(t)})
	must(t, err)
	if rep.Replay.Inserts != 1 || rep.Replay.Updates != 1 || rep.Replay.Deletes != 1 {
		t.Fatalf("replayed %+v, want one insert, one update, one delete", rep.Replay)
	}
	cmds := mon.commands()
	for _, name := range []string{"insert", "update", "delete"} {
		if len(cmds[name]) == 0 {
			t.Fatalf("no %s command seen: %v", name, cmds)
		}
		for _, sent := range cmds[name] {
			if sent != bypass {
				t.Fatalf("a replayed %s carried bypassEmptyTsReplacement=%v; the server takes it: %v", name, sent, bypass)
			}
		}
	}
	wantDocs(t, docs(t, client, db, "c"), replaced, inserted)
}

// With the field on, the snapshot load's inserts and each kind of replayed
// write (insert, replacement, delete) carry it. The test server refuses it
// ("unknown field"), so there each write is its own run and its error is
// that refusal; a server that takes it must take it on all three.
func TestEmptyTimestampFieldSent(t *testing.T) {
	srv := testserver.Start(t)
	ctx := context.Background()
	db := srv.DB("etf")
	client, mon := monitored(t, srv, db)
	takes := use(t, client).Server.BypassEmptyTsReplacement
	outcome := func(what string, err error) {
		t.Helper()
		switch {
		case takes && err != nil:
			t.Fatalf("%s with bypassEmptyTsReplacement on a server that takes it: %v", what, err)
		case !takes && (err == nil || !strings.Contains(err.Error(), "bypassEmptyTsReplacement")):
			t.Fatalf("%s with bypassEmptyTsReplacement on a server that refuses it: %v, want its refusal naming the field", what, err)
		}
	}
	on := &restore.Server{BypassEmptyTsReplacement: true}

	r := rt.New(t, rt.Spec{Flavor: "mongodb", Collections: []rt.Collection{{DB: db, Name: "c",
		Docs: []bson.D{{{Key: "_id", Value: 1}, {Key: "ts", Value: emptyTS}}}}}})
	p := prepare(t, r, restore.Request{To: restore.When{Latest: true}, Target: "t"})
	_, err := restore.Execute(ctx, r.Repository, client, p.Plan, restore.Options{Server: on, Log: testLogger(t)})
	outcome("the snapshot load", err)
	if got := mon.commands()["insert"]; len(got) == 0 || !got[0] {
		t.Fatalf("the load's insert commands carried the field: %v, want true", got)
	}

	for _, w := range []struct {
		cmd   string
		entry bson.D
	}{
		{"insert", rt.Insert(db+".c", bson.D{{Key: "_id", Value: 2}, {Key: "ts", Value: emptyTS}})},
		{"update", rt.Update(db+".c", 1, bson.D{{Key: "_id", Value: 1}, {Key: "ts", Value: emptyTS}, {Key: "v", Value: 2}})},
		{"delete", rt.Delete(db+".c", 1)},
	} {
		must(t, client.Database(db).Drop(ctx))
		_, err := client.Database(db).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
		must(t, err)
		mon.commands()
		a := &replay.Applier{Client: client, Log: testLogger(t), BypassEmptyTsReplacement: true}
		e := marshal(t, append(bson.D{{Key: "ts", Value: bson.Timestamp{T: 1, I: 1}}}, w.entry...))
		_, err = a.Apply(ctx, []bson.Raw{e})
		outcome("a replayed "+w.cmd, err)
		if got := mon.commands()[w.cmd]; len(got) != 1 || !got[0] {
			t.Fatalf("the replayed %s commands carried the field: %v, want one with it", w.cmd, got)
		}
	}
}

func docs(t *testing.T, c *mongo.Client, db, coll string) []bson.Raw {
	t.Helper()
	ctx := context.Background()
	cur, err := c.Database(db).Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
	must(t, err)
	var out []bson.Raw
	for cur.Next(ctx) {
		out = append(out, append(bson.Raw(nil), cur.Current...))
	}
	must(t, cur.Err())
	return out
}

// wantDocs compares documents byte for byte, in _id order.
func wantDocs(t *testing.T, got []bson.Raw, want ...bson.D) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d documents %v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		if string(got[i]) != string(marshal(t, w)) {
			t.Fatalf("document %d is %s, want %s byte for byte", i, got[i], marshal(t, w))
		}
	}
}

func marshal(t *testing.T, d bson.D) bson.Raw {
	t.Helper()
	b, err := bson.Marshal(d)
	must(t, err)
	return b
}
