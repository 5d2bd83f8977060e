package browse_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// recorded is one version of a document as the server returned it right
// after the write that made it (nil: no document).
type recorded struct {
	kind string
	doc  bson.Raw
}

// session is a test server captured by an agent into a file repository,
// and the versions of the documents written, read back from the server.
type session struct {
	t        *testing.T
	ctx      context.Context
	srv      *testserver.Server
	coll     *mongo.Collection
	ns       string
	r        *repo.Repository
	a        *agent.Agent
	versions map[int32][]recorded
}

// startSession loads 60 documents {_id: i, grp: i % 5, v: 0}, then starts
// an agent, which takes its base snapshot of them, and waits for it.
func startSession(t *testing.T) *session {
	ctx := context.Background()
	srv := testserver.Start(t)
	s := &session{t: t, ctx: ctx, srv: srv, versions: map[int32][]recorded{}}
	s.coll = srv.Client().Database(srv.DB("shop")).Collection("orders")
	s.ns = srv.DB("shop") + ".orders"
	var docs []any
	for i := int32(1); i <= 60; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: i}, {Key: "grp", Value: i % 5}, {Key: "v", Value: 0}})
	}
	_, err := s.coll.InsertMany(ctx, docs)
	must(t, err)
	for i := int32(1); i <= 60; i++ {
		s.record(i, "")
	}
	url := "file://" + filepath.Join(t.TempDir(), "repo")
	st, err := storage.Open(ctx, url)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	s.r, err = repo.Init(ctx, st, repo.InitOptions{Location: url})
	must(t, err)
	cfg := config.Default()
	cfg.API.Listen = "127.0.0.1:0"
	cfg.Source, cfg.Repo = config.Secret(srv.URI()), url
	cfg.Capture.FlushInterval = config.Duration(200 * time.Millisecond)
	cfg.Capture.SpoolDir = filepath.Join(t.TempDir(), "spool")
	actx, cancel := context.WithCancel(ctx)
	s.a = &agent.Agent{Config: cfg, Log: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelWarn})), HeartbeatEvery: 500 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- s.a.Run(actx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("agent: %v", err)
		}
	})
	s.waitFor(2*time.Minute, "the agent's base snapshot", func() bool {
		snaps, err := s.r.ListSnapshots(ctx, "")
		return err == nil && len(snaps) > 0
	})
	return s
}

// record reads document id back from the server as the version kind made.
func (s *session) record(id int32, kind string) {
	raw, err := s.coll.FindOne(s.ctx, bson.D{{Key: "_id", Value: id}}).Raw()
	if errors.Is(err, mongo.ErrNoDocuments) {
		raw, err = nil, nil
	}
	must(s.t, err)
	s.versions[id] = append(s.versions[id], recorded{kind, append(bson.Raw(nil), raw...)})
}

func (s *session) waitFor(within time.Duration, what string, cond func() bool) {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// durable waits until the agent has stored every entry the server logged.
func (s *session) durable() {
	last, err := oracle.LastOplogTS(s.ctx, s.srv.Client())
	must(s.t, err)
	s.waitFor(time.Minute, "the capture of "+last.String(), func() bool { return s.a.Stats() != nil && !s.a.Stats().LastDurable().Before(last) })
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// TestBadDeleteManyOnTheServer: a workload on the test server, captured by
// an agent; a bad deleteMany of every document with grp 3 shows in the
// summary as one line at its second with the number of documents it
// deleted, and lists as those documents' deletes.
func TestBadDeleteManyOnTheServer(t *testing.T) {
	s := startSession(t)
	for i := int32(1); i <= 10; i++ {
		_, err := s.coll.UpdateOne(s.ctx, bson.D{{Key: "_id", Value: i}}, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 1}}}})
		must(t, err)
	}
	before, err := oracle.LastOplogTS(s.ctx, s.srv.Client())
	must(t, err)
	// Start the delete early in a second, so that it stays in one.
	s.waitFor(3*time.Second, "the start of a second", func() bool { return time.Now().Nanosecond() < 100e6 })
	res, err := s.coll.DeleteMany(s.ctx, bson.D{{Key: "grp", Value: 3}})
	must(t, err)
	after, err := oracle.LastOplogTS(s.ctx, s.srv.Client())
	must(t, err)
	_, err = s.coll.InsertOne(s.ctx, bson.D{{Key: "_id", Value: 1000}, {Key: "grp", Value: 3}})
	must(t, err)
	s.durable()

	q := browse.Query{From: restore.When{TS: optime.Timestamp{T: before.T, I: before.I + 1}}, To: restore.When{TS: after},
		NS: []string{s.ns}, Ops: []string{"delete"}}
	sum, err := browse.Summarize(s.ctx, s.r, q)
	must(t, err)
	if res.DeletedCount != 12 || len(sum.Rows) != 1 || sum.Rows[0].Count != res.DeletedCount || sum.Rows[0].NS != s.ns {
		t.Fatalf("deleteMany of %d documents: summary rows %+v, want one line with that count", res.DeletedCount, sum.Rows)
	}
	// The whole session, by the minute around it: the same line.
	wide := browse.Query{From: restore.When{TS: optime.Timestamp{T: before.T - 60}}, NS: []string{s.ns}}
	all, err := browse.Summarize(s.ctx, s.r, wide)
	must(t, err)
	if !slices.Contains(all.Rows, sum.Rows[0]) {
		t.Fatalf("the session's summary %+v lacks the deleteMany's line %+v", all.Rows, sum.Rows[0])
	}
	var deleted []int32
	_, err = browse.List(s.ctx, s.r, q, func(o browse.Op) error {
		n, _ := o.ID.AsInt64OK()
		deleted = append(deleted, int32(n))
		return nil
	})
	must(t, err)
	slices.Sort(deleted)
	want := []int32{3, 8, 13, 18, 23, 28, 33, 38, 43, 48, 53, 58}
	if !slices.Equal(deleted, want) {
		t.Fatalf("listed deletes of %v, want %v", deleted, want)
	}
}

// TestHistoryOnTheServer: the history of several documents equals the
// versions the workload wrote, each read back from the server after its
// write: updates that set, unset and increment, a replacement, a delete
// and a re-insert, and the deletes of a deleteMany.
func TestHistoryOnTheServer(t *testing.T) {
	s := startSession(t)
	id := func(i int32) bson.D { return bson.D{{Key: "_id", Value: i}} }
	steps := []struct {
		doc   int32
		kind  string
		write func() error
	}{
		{1, "update", func() error { return upd(s, 1, bson.D{{Key: "$set", Value: bson.D{{Key: "name", Value: "first"}}}}) }},
		{2, "update", func() error {
			return upd(s, 2, bson.D{{Key: "$set", Value: bson.D{{Key: "tags", Value: bson.A{"a", "b"}}}}})
		}},
		{1, "update", func() error { return upd(s, 1, bson.D{{Key: "$unset", Value: bson.D{{Key: "grp", Value: ""}}}}) }},
		{2, "update", func() error { return upd(s, 2, bson.D{{Key: "$push", Value: bson.D{{Key: "tags", Value: "c"}}}}) }},
		{1, "update", func() error {
			_, err := s.coll.ReplaceOne(s.ctx, id(1), bson.D{{Key: "_id", Value: int32(1)}, {Key: "whole", Value: "new"}})
			return err
		}},
		{1, "delete", func() error { _, err := s.coll.DeleteOne(s.ctx, id(1)); return err }},
		{3, "update", func() error { return upd(s, 3, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 5}}}}) }},
		{1, "insert", func() error {
			_, err := s.coll.InsertOne(s.ctx, bson.D{{Key: "_id", Value: int32(1)}, {Key: "again", Value: true}})
			return err
		}},
		{1, "update", func() error { return upd(s, 1, bson.D{{Key: "$inc", Value: bson.D{{Key: "v", Value: 2}}}}) }},
	}
	for _, st := range steps {
		must(t, st.write())
		s.record(st.doc, st.kind)
	}
	// The bad deleteMany takes document 3 (grp 3) with it; it comes back.
	_, err := s.coll.DeleteMany(s.ctx, bson.D{{Key: "grp", Value: 3}})
	must(t, err)
	s.record(3, "delete")
	_, err = s.coll.InsertOne(s.ctx, bson.D{{Key: "_id", Value: int32(3)}, {Key: "restored", Value: true}})
	must(t, err)
	s.record(3, "insert")
	s.durable()

	for _, doc := range []int32{1, 2, 3, 4} {
		h, err := browse.History(s.ctx, s.r, browse.HistoryQuery{NS: s.ns, ID: bson.RawValue{Type: bson.TypeInt32, Value: bsonInt32(doc)}})
		must(t, err)
		var got, want []string
		for _, v := range h.Versions {
			got = append(got, fmt.Sprintf("%s %s", v.Kind, browse.DocJSON(v.Doc)))
		}
		for _, v := range s.versions[doc] {
			want = append(want, fmt.Sprintf("%s %s", v.kind, browse.DocJSON(v.doc)))
		}
		if !slices.Equal(got, want) {
			t.Errorf("history of _id %d:\n  %v\nwant the versions read from the server:\n  %v", doc, got, want)
		}
		for i := 2; i < len(h.Versions); i++ {
			if !h.Versions[i].TS.After(h.Versions[i-1].TS) {
				t.Errorf("history of _id %d: version %d at %s is not after %s", doc, i, h.Versions[i].TS, h.Versions[i-1].TS)
			}
		}
	}
}

func upd(s *session, id int32, u bson.D) error {
	_, err := s.coll.UpdateOne(s.ctx, bson.D{{Key: "_id", Value: id}}, u)
	return err
}

func bsonInt32(n int32) []byte { return []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)} }
