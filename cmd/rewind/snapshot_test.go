package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/storage"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Command-line mistakes exit 2 before anything is read.
func TestSnapshotUsageErrors(t *testing.T) {
	url := filepath.Join(t.TempDir(), "repo")
	t.Setenv("REWIND_SOURCE", "")
	src := "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300"
	for _, tc := range []struct {
		args  []string
		wants []string
	}{
		{[]string{"--repo", url}, []string{"--source is required"}},
		{[]string{"--repo", url, "--source", src, "--ns", "shop*.orders"}, []string{"shop*.orders", "db.coll"}},
		{[]string{"--repo", url, "--source", src, "--ns", "shop.ord*"}, []string{"wildcards"}},
		{[]string{"--repo", url, "--source", src, "--exclude", ".orders"}, []string{"database name is empty"}},
		{[]string{"--repo", url, "--source", src, "--ns", "shop."}, []string{"collection name is empty"}},
		{[]string{"--repo", url, "--source", src, "--parallel", "0"}, []string{"--parallel"}},
	} {
		code, _, stderr := cli(t, append([]string{"snapshot"}, tc.args...)...)
		wantFailure(t, code, stderr, 2, append(tc.wants, "--help")...)
	}
}

// A failure while working exits 1 with a one-line error, and a source
// without an oplog is refused before anything is stored.
func TestSnapshotBadInput(t *testing.T) {
	srv := testserver.Start(t)
	url := filepath.Join(t.TempDir(), "repo")
	if code, _, stderr := cli(t, "init", "--repo", url); code != 0 {
		t.Fatal(stderr)
	}
	code, _, stderr := cli(t, "snapshot", "--repo", url, "--source", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300")
	wantFailure(t, code, stderr, 1, "no server answered")
	code, _, stderr = cli(t, "snapshot", "--repo", filepath.Join(t.TempDir(), "none"), "--source", srv.URI())
	wantFailure(t, code, stderr, 10, "no rewind repository", "rewind init")

	// A working snapshot, then the same source with its oplog gone.
	ctx := context.Background()
	_, err := srv.Client().Database(srv.DB("cli")).Collection("c").InsertOne(ctx, bson.D{{Key: "_id", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	code, out, stderr := cli(t, "snapshot", "--repo", url, "--source", srv.URI(), "--ns", srv.DB("cli")+".*")
	if code != 0 || !strings.Contains(out, "complete: 1 collections") {
		t.Fatalf("snapshot: %d %q %s", code, out, stderr)
	}
	if srv.External() {
		t.Skip("the rest drops the source's oplog, which a real deployment must never lose")
	}
	if err := srv.Client().Database("local").Collection("oplog.rs").Drop(ctx); err != nil {
		t.Fatal(err)
	}
	code, _, stderr = cli(t, "snapshot", "--repo", url, "--source", srv.URI())
	wantFailure(t, code, stderr, 1, "local.oplog.rs")
	st, err := storage.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	r, err := repo.Open(ctx, st, repo.OpenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := r.ListSnapshots(ctx, "")
	if err != nil || len(snaps) != 1 {
		t.Fatalf("snapshots = %v, %v; want only the first", snaps, err)
	}
	var data int
	st.List(ctx, "data/", func(storage.Info) error { data++; return nil })
	if data != 1 {
		t.Fatalf("%d data objects, want the first snapshot's 1 chunk", data)
	}
}
