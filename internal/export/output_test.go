package export_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
	rt "github.com/rewind-backup/rewind/internal/restore/restoretest"
)

func twoCollections(t *testing.T) *rt.Repo {
	docs := func(n int) []bson.D {
		var out []bson.D
		for i := range n {
			out = append(out, bson.D{{Key: "_id", Value: int32(i)}})
		}
		return out
	}
	return rt.New(t, rt.Spec{ChunkDocs: 4, Collections: []rt.Collection{
		{DB: "a", Name: "one", Docs: docs(10)}, {DB: "a", Name: "two", Docs: docs(10)}},
		Entries: []bson.D{rt.Insert("a.one", bson.D{{Key: "_id", Value: int32(99)}})}})
}

// The output appears only when the export is complete: a chunk that cannot
// be read while writing leaves no directory and no temporary file behind,
// and an archive written with --force replaces the old file only then.
func TestOutputAppearsWhole(t *testing.T) {
	ctx := context.Background()
	r := twoCollections(t)
	must(t, r.Store().Delete(ctx, r.Snapshot.Collections[1].Chunks[2].Key)) // a.two's last chunk
	dir := t.TempDir()
	old := filepath.Join(dir, "old.archive")
	must(t, os.WriteFile(old, []byte("the old archive"), 0o600))
	for _, req := range []export.Request{
		{To: restore.When{Latest: true}, Format: export.BSON, Out: filepath.Join(dir, "dump")},
		{To: restore.When{Latest: true}, Format: export.Archive, Out: old, Force: true},
	} {
		must(t, req.Validate())
		p, err := export.Prepare(ctx, r.Repository, req)
		must(t, err)
		_, err = p.Write(ctx, export.Options{Log: testLogger(t)})
		p.Release()
		if err == nil || !strings.Contains(err.Error(), "a.two") || !strings.Contains(err.Error(), r.Snapshot.Collections[1].Chunks[2].Key) ||
			!strings.Contains(err.Error(), "another snapshot's window") {
			t.Fatalf("%s: %v, want an error naming a.two, its missing chunk and what to do", req.Format, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "old.archive" {
		t.Errorf("left behind: %v, want only old.archive", entries)
	}
	if b, _ := os.ReadFile(old); string(b) != "the old archive" {
		t.Errorf("the failed export changed old.archive: %q", b)
	}
}

// --out - writes an archive, or the one collection --ns selects as BSON or
// Extended JSON lines; a stream of several collections is refused before
// anything is written.
func TestStreams(t *testing.T) {
	ctx := context.Background()
	r := twoCollections(t)
	run := func(req export.Request) (string, error) {
		must(t, req.Validate())
		p, err := export.Prepare(ctx, r.Repository, req)
		if err != nil {
			return "", err
		}
		defer p.Release()
		var out bytes.Buffer
		_, err = p.Write(ctx, export.Options{Stdout: &out, Log: testLogger(t)})
		return out.String(), err
	}
	latest := restore.When{Latest: true}
	for _, f := range []export.Format{export.BSON, export.JSONL} {
		_, err := run(export.Request{To: latest, Format: f, Out: "-", Include: []string{"a"}})
		if err == nil || !strings.Contains(err.Error(), "a.one, a.two") || !strings.Contains(err.Error(), "--ns db.coll") {
			t.Errorf("%s of two collections to -: %v", f, err)
		}
	}
	out, err := run(export.Request{To: latest, Format: export.JSONL, Out: "-", Include: []string{"a.one"}})
	must(t, err)
	if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 11 || lines[10] != `{"_id":{"$numberInt":"99"}}` {
		t.Errorf("jsonl of a.one: %q", out)
	}
	out, err = run(export.Request{To: latest, Format: export.BSON, Out: "-", Include: []string{"a.two"}})
	must(t, err)
	if docs := readDocsFrom(t, []byte(out)); len(docs) != 10 {
		t.Errorf("bson of a.two: %d documents, want 10", len(docs))
	}
	out, err = run(export.Request{To: latest, Format: export.Archive, Out: "-"})
	must(t, err)
	if d := readArchive(t, []byte(out)); len(d.docs["a.one"]) != 11 || len(d.docs["a.two"]) != 10 {
		t.Errorf("archive to -: %d and %d documents, want 11 and 10", len(d.docs["a.one"]), len(d.docs["a.two"]))
	}
	// One collection in the snapshot, a second one from the oplog: refused
	// once the state is known, before anything is written.
	r = rt.New(t, rt.Spec{Collections: []rt.Collection{{DB: "x", Name: "old", Docs: []bson.D{{{Key: "_id", Value: 1}}}}},
		Entries: []bson.D{rt.Insert("x.new", bson.D{{Key: "_id", Value: 1}})}})
	out, err = run(export.Request{To: latest, Format: export.JSONL, Out: "-", Include: []string{"x"}})
	if err == nil || !strings.Contains(err.Error(), "x.new, x.old") || out != "" {
		t.Errorf("jsonl of x.old and x.new to -: %v, wrote %q", err, out)
	}
}
