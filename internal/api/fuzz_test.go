package api_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/api/apifuzz"
	"github.com/rewind-backup/rewind/internal/config"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// FuzzAgentAPI sends the agent's API random methods, paths, queries,
// bodies and headers over a small repository: no panic, no 500 without a
// logged cause, every error in the envelope, the token never echoed
// (apifuzz). The seeds, one or more per endpoint, run in every test run;
// `go test -fuzz FuzzAgentAPI ./internal/api/` searches further.
//
// The source is a test server (for /-/ready and snapshots). Jobs that the
// fuzzed requests start (snapshots, restores, undos) run under a context
// cancelled once the request is answered, so none runs for long.
func FuzzAgentAPI(f *testing.F) {
	for _, s := range []apifuzz.Input{
		{Method: 0, Path: "api/v1/status"},
		{Method: 0, Path: "api/v1/timeline"},
		{Method: 0, Path: "api/v1/snapshots"},
		{Method: 0, Path: "api/v1/jobs"},
		{Method: 0, Path: "api/v1/jobs/nope"},
		{Method: 0, Path: "api/v1/alerts"},
		{Method: 0, Path: "api/v1/drills?limit=3"},
		{Method: 0, Path: "api/v1/audit?limit=5"},
		{Method: 0, Path: "api/v1/oplog?from=latest&to=latest&ns=fz.orders&op=insert&limit=2"},
		{Method: 0, Path: "api/v1/history?ns=fz.orders&id=%7B%22%24numberInt%22%3A%221%22%7D"},
		{Method: 0, Path: "api/v1/export?to=latest&ns=fz.orders&format=jsonl"},
		{Method: 0, Path: "metrics"},
		{Method: 0, Path: "-/ready"},
		{Method: 1, Path: "api/v1/snapshots", Body: []byte(`{"parallel":2}`)},
		{Method: 1, Path: "api/v1/snapshots", Body: []byte(`{"parallel":-3}`)},
		{Method: 1, Path: "api/v1/restores", Body: []byte(`{"to":"latest","ns":["fz"],"rename":{"fz":"fz2"},"dry_run":true}`)},
		{Method: 1, Path: "api/v1/restores", Body: []byte(`{"to":"latest","target":"mongodb://127.0.0.1:1/","filter":{"grp":1},"merge":"missing","connect_timeout":"1s"}`)},
		{Method: 1, Path: "api/v1/restores", Body: []byte(`{"to":"2026-11-25T10:00:00Z","parallel":-1}`)},
		{Method: 1, Path: "api/v1/undos", Body: []byte(`{"from":"latest","to":"latest","ns":["fz.orders"],"target":"mongodb://127.0.0.1:1/","dry_run":true}`)},
		{Method: 1, Path: "api/v1/restores", Body: []byte(`[1, {"to": null}]`), ContentType: "text/plain"},
		{Method: 1, Path: "api/v1/restores", Body: []byte("{\"to\":\"latest\"}{}")},
		{Method: 3, Path: "api/v1/restores/x"},
		{Method: 0, Path: "api/v1/restores/..%2f..%2fjobs"},
	} {
		for _, auth := range []string{"Bearer " + token, "", "Bearer wrong", "Basic " + token} {
			f.Add(s.Method, s.Path, s.Body, auth, s.ContentType)
		}
	}
	s, log := fuzzAgent(f)
	h := s.Handler()
	f.Fuzz(func(t *testing.T, method byte, path string, body []byte, auth, contentType string) {
		ctx, cancel := context.WithCancel(context.Background())
		served := make(chan struct{})
		go func() { defer close(served); s.Serve(ctx) }()
		apifuzz.Do(t, h, log, token, apifuzz.Input{Method: method, Path: path, Body: body, Auth: auth, ContentType: contentType}, 5*time.Second)
		cancel()
		<-served
	})
}

// fuzzAgent is the agent API the fuzz test and TestInternalErrorIsLogged
// drive: a small repository (fz.orders), a test server as the source, the
// test token, and the log the checks read.
func fuzzAgent(tb testing.TB) (*api.Server, *apifuzz.Log) {
	log := &apifuzz.Log{}
	r := rt.New(tb, rt.Spec{Flavor: "mongodb",
		Collections: []rt.Collection{{DB: "fz", Name: "orders", Docs: []bson.D{{{Key: "_id", Value: int32(1)}, {Key: "grp", Value: int32(1)}}}}},
		Entries:     []bson.D{rt.Insert("fz.orders", bson.D{{Key: "_id", Value: int32(2)}})}})
	srv := testserver.Start(tb)
	src, err := source.Connect(context.Background(), srv.URI())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = src.Close(ctx)
	})
	s, err := api.New(api.Deps{Config: config.API{Token: token}, Repo: r.Repository, Source: src, Shard: "rs0", Version: "test", Log: log.Logger()})
	if err != nil {
		tb.Fatal(err)
	}
	return s, log
}

// A 500 is logged with its cause: an export whose temporary directory
// cannot be made answers 500 and logs why (apifuzz.Check fails the test
// otherwise).
func TestInternalErrorIsLogged(t *testing.T) {
	s, log := fuzzAgent(t)
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	rec := apifuzz.Do(t, s.Handler(), log, token, apifuzz.Input{Path: "api/v1/export?to=latest&ns=fz.orders&format=jsonl", Auth: "Bearer " + token}, 5*time.Second)
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), "create a temporary directory for the export") {
		t.Fatalf("export without a temporary directory: %d %s", rec.Code, rec.Body.String())
	}
}
