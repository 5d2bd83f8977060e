package replay_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
)

// TestVectorsInMemory is the server-free path: every vector is replayed by
// the same Applier into a replay.Memory, all entries in one Apply and again
// one entry per Apply with deferred indexes, and the result is compared with
// after (documents byte for byte, namespaces, after_indexes and
// after_options) exactly as on a server. Nothing is skipped: a form a test
// server refuses is proven here.
func TestVectorsInMemory(t *testing.T) {
	vectors := loadVectors(t)
	passed := 0
	for _, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			for _, deferIndexes := range []bool{false, true} {
				for _, p := range runInMemory(t, v, deferIndexes) {
					t.Errorf("deferIndexes=%v: %s", deferIndexes, p)
				}
			}
			if !t.Failed() {
				passed++
			}
		})
	}
	t.Logf("in memory: %d of %d vectors passed", passed, len(vectors))
}

// runInMemory loads before into a Memory, replays the entries and compares
// the result with after; it returns the differences.
func runInMemory(t *testing.T, v vector, deferIndexes bool) []string {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	m := replay.NewMemory()
	els, err := v.Before.Elements()
	if err != nil {
		return []string{"read before: " + err.Error()}
	}
	for _, e := range els {
		vals, _ := e.Value().Array().Values()
		docs := make([]bson.Raw, len(vals))
		for i, d := range vals {
			docs[i] = d.Document()
		}
		if err := m.Load(e.Key(), docs); err != nil {
			return []string{err.Error()}
		}
	}
	a := &replay.Applier{Memory: m, Log: slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	if err := replayVector(ctx, t, a, v, deferIndexes); err != nil {
		return []string{err.Error()}
	}
	return compareState(ctx, memState{m}, v)
}

// TestMemoryLikeMongoDB pins the server behaviours the memory path relies
// on, each as MongoDB documents it.
func TestMemoryLikeMongoDB(t *testing.T) {
	ctx := t.Context()
	m := replay.NewMemory()
	raw := func(ejson string) bson.Raw {
		var r bson.Raw
		if err := bson.UnmarshalExtJSON([]byte(ejson), false, &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := m.Load("app.c", []bson.Raw{raw(`{"_id":1,"$price":3}`)}); err != nil {
		t.Fatal(err)
	}
	a := &replay.Applier{Memory: m}
	apply := func(entries ...string) error {
		es := make([]bson.Raw, len(entries))
		for i, e := range entries {
			es[i] = raw(e)
		}
		_, err := a.Apply(ctx, es)
		return err
	}
	// An insert into a missing collection creates it; a create of an
	// existing one is the NamespaceExists the Applier accepts.
	if err := apply(`{"op":"i","ns":"app.new","o":{"_id":1}}`, `{"op":"c","ns":"app.$cmd","o":{"create":"new"}}`); err != nil {
		t.Fatalf("insert then create: %v", err)
	}
	if got := strings.Join(m.Namespaces(), ","); got != "app.c,app.new" {
		t.Fatalf("namespaces %s, want app.c,app.new", got)
	}
	// A field create does not take is refused, as MongoDB's strict create does.
	if err := apply(`{"op":"c","ns":"app.$cmd","o":{"create":"x","ident":"collection-1"}}`); err == nil || !strings.Contains(err.Error(), "unknown field") {
		t.Fatalf("create with an unknown field: %v, want MongoDB's unknown field error", err)
	}
	// A document with a top-level $ field is rewritten whole (the Applier
	// must not send it as a plain replacement, which MongoDB refuses).
	if err := apply(`{"op":"u","ns":"app.c","o":{"$v":2,"diff":{"u":{"$price":4}}},"o2":{"_id":1}}`); err != nil {
		t.Fatalf("update of a document with a $ field: %v", err)
	}
	if got := m.Documents("app.c"); len(got) != 1 || string(got[0]) != string(raw(`{"_id":1,"$price":4}`)) {
		t.Fatalf("documents %v, want the $ field updated in place", got)
	}
}
