package replay_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// Every vector runs two ways. On the test server (TestVectors,
// TestVectorsDeferredIndexes): before is loaded, the entries are replayed
// through a replay.Applier on the server, and the server's state is compared
// with after. In memory (TestVectorsInMemory, memory_test.go): the same
// Applier replays into a replay.Memory, with no server, and its state is
// compared the same way. The memory path proves the translator on the forms
// the FerretDB test server refuses (nested arrays, '.' and '$' in field
// names, TTL and hidden indexes, views, collections with a '.' renamed...).

// vector is one test vector of shared/oplog/vectors (see its README.md).
type vector struct {
	Name         string     `bson:"name"`
	About        string     `bson:"about"`
	Before       bson.Raw   `bson:"before"`
	Entries      []bson.Raw `bson:"entries"`
	After        bson.Raw   `bson:"after"`
	AfterIndexes bson.Raw   `bson:"after_indexes"`
	AfterOptions bson.Raw   `bson:"after_options"`
}

// vectorDirs are the directories vectors are read from: the one in
// $REWIND_OPLOG_VECTORS alone; else shared/oplog/vectors beside the
// repository (the authoritative set, which CI checks out next to it)
// followed by testdata/vectors; else testdata/vectors alone. testdata holds a
// copy of the shared set made on 2026-11-25, so that a lone clone of the
// repository tests too, and the vectors this package added since (listed in
// docs/TESTING.md), which run beside the shared set until they join it.
func vectorDirs(t testing.TB) []string {
	if dir := os.Getenv("REWIND_OPLOG_VECTORS"); dir != "" {
		return []string{dir}
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	local := filepath.Join("testdata", "vectors")
	for dir := wd; filepath.Dir(dir) != dir; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "oplog", "vectors")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return []string{cand, local}
		}
	}
	t.Logf("no shared/oplog/vectors above %s: using the copy in testdata/vectors", wd)
	return []string{local}
}

// loadVectors reads the vectors of vectorDirs, in name order; a name found
// in an earlier directory hides the same name in a later one.
func loadVectors(t testing.TB) []vector {
	seen := map[string]bool{}
	var out []vector
	for _, dir := range vectorDirs(t) {
		files, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no vectors in %s (%v)", dir, err)
		}
		for _, f := range files {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var v vector
			if err := bson.UnmarshalExtJSON(data, true, &v); err != nil {
				t.Fatalf("read vector %s: %v", f, err)
			}
			if v.Name == "" {
				t.Fatalf("vector %s has no name", f)
			}
			if !seen[v.Name] {
				seen[v.Name] = true
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func TestVectors(t *testing.T) { testVectors(t, false) }

// TestVectorsDeferredIndexes replays every vector again, one Apply call per
// entry and with DeferIndexes, building the indexes after the last entry:
// the catalog must follow the window's drops, renames, dropIndexes and
// collMods to the same result, and open transactions must carry over.
func TestVectorsDeferredIndexes(t *testing.T) { testVectors(t, true) }

func testVectors(t *testing.T, deferIndexes bool) {
	vectors := loadVectors(t)
	srv := testserver.Start(t)
	passed, refused := 0, 0
	for i, v := range vectors {
		t.Run(v.Name, func(t *testing.T) {
			run := runOnServer(t, srv.Client(), srv.DB(fmt.Sprintf("v%03d_", i)), v, deferIndexes)
			switch {
			case run.refused != nil && srv.FerretDB():
				refused++
				t.Skipf("vector %s: the test server refused it: %v (TestVectorsInMemory proves it without a server)", v.Name, run.refused)
			case run.refused != nil:
				t.Errorf("vector %s: the server refused it: %v", v.Name, run.refused)
			}
			for _, p := range run.problems {
				t.Error(p)
			}
			if !t.Failed() {
				passed++
			}
		})
	}
	t.Logf("on the test server: %d of %d vectors passed, %d refused by the server", passed, len(vectors), refused)
}

// serverRun is what replaying one vector on a server gave.
type serverRun struct {
	// refused is the server's refusal of the vector's data or of a write or
	// command rewind sent for it (see refusedBy); problems are then empty.
	refused error
	// problems are failures: rewind's own errors, server errors that are
	// not refusals, and differences from after.
	problems []string
}

// runOnServer loads before under the database prefix, replays the entries
// and compares the server's state with after.
func runOnServer(t *testing.T, c *mongo.Client, prefix string, v vector, deferIndexes bool) serverRun {
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := load(ctx, c, prefix, v.Before); err != nil {
		if refusal := refusedBy(err); refusal != nil {
			return serverRun{refused: fmt.Errorf("load before: %w", refusal)}
		}
		return serverRun{problems: []string{err.Error()}}
	}
	a := &replay.Applier{
		Client: c,
		Map:    func(db, coll string) (string, string, bool) { return prefix + db, coll, true },
		Log:    slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if err := replayVector(ctx, t, a, v, deferIndexes); err != nil {
		if refusal := refusedBy(err); refusal != nil {
			return serverRun{refused: fmt.Errorf("replay: %w", refusal)}
		}
		return serverRun{problems: []string{err.Error()}}
	}
	return serverRun{problems: compareState(ctx, serverState{c, prefix}, v)}
}

// replayVector replays the vector's entries through a, all in one Apply,
// or with deferIndexes one Apply per entry (transactions, temp collections
// and the index catalog must survive between calls) and BuildIndexes at
// the end.
func replayVector(ctx context.Context, t *testing.T, a *replay.Applier, v vector, deferIndexes bool) error {
	a.SkipFromMigrate = strings.HasPrefix(v.About, "SHARDED-CLUSTER")
	a.DeferIndexes = deferIndexes
	var st replay.Stats
	batches := [][]bson.Raw{v.Entries}
	if deferIndexes {
		batches = batches[:0]
		for _, e := range v.Entries {
			batches = append(batches, []bson.Raw{e})
		}
	}
	for _, b := range batches {
		s, err := a.Apply(ctx, b)
		st.Add(s)
		if err != nil {
			return fmt.Errorf("apply: %w", err)
		}
	}
	if _, err := a.BuildIndexes(ctx); err != nil {
		return fmt.Errorf("build indexes: %w", err)
	}
	t.Logf("stats %+v", st)
	if st.Entries != int64(len(v.Entries)) {
		return fmt.Errorf("stats count %d entries, want %d", st.Entries, len(v.Entries))
	}
	return nil
}

// refusals are the answers with which the FerretDB test server refuses what
// MongoDB accepts (shared/ENVIRONMENT.md): data it cannot hold, and
// commands, options and names it does not implement. On FerretDB a vector
// so refused, while loading before or replaying, is skipped with the
// answer quoted, whatever its name; against MongoDB it fails. Each entry is
// narrow (a code, and a message where the code is generic), so that a
// malformed request from rewind is not taken for a refusal: it fails the
// test, as does an answer missing here until it is known to be a refusal.
// No vector needs a name list: none is accepted by FerretDB and replayed
// differently from MongoDB. A mismatch with after is always a failure.
var refusals = []struct {
	code int
	msg  string // a substring the message holds, or "" for any message
	what string
}{
	{238, "", "NotImplemented: a command or an option FerretDB lacks (collMod, views, TTL, partial and hidden indexes, collations, validators, cross-database renames)"},
	{59, "no such command", "CommandNotFound: a command FerretDB lacks (convertToCapped)"},
	{2, "invalid key:", "BadValue from its document validation: field names with '.' or a leading '$'"},
	{2, "invalid value:", "BadValue from its document validation: nested arrays, NaN, ..."},
	{73, "Invalid namespace specified", "InvalidNamespace: renameCollection of a collection whose name holds a '.' (tmpXXXXX.renameCollection)"},
}

// refusedBy returns err's server error when it is one of the refusals, nil
// otherwise. Write errors count too (a document refused inside a bulk write).
func refusedBy(err error) error {
	var se mongo.ServerError
	if !errors.As(err, &se) {
		return nil
	}
	for _, r := range refusals {
		if se.HasErrorCode(r.code) && (r.msg == "" || strings.Contains(se.Error(), r.msg)) {
			return err
		}
	}
	return nil
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// load creates every namespace of before (empty ones too) and inserts its documents.
func load(ctx context.Context, c *mongo.Client, prefix string, before bson.Raw) error {
	els, err := before.Elements()
	if err != nil {
		return err
	}
	for _, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		target := c.Database(prefix + db)
		if err := target.CreateCollection(ctx, coll); err != nil {
			return fmt.Errorf("create %s: %w", e.Key(), err)
		}
		docs, err := e.Value().Array().Values()
		if err != nil {
			return err
		}
		if len(docs) == 0 {
			continue
		}
		ins := make([]any, len(docs))
		for i, d := range docs {
			ins[i] = d.Document()
		}
		if _, err := target.Collection(coll).InsertMany(ctx, ins); err != nil {
			return fmt.Errorf("insert into %s: %w", e.Key(), err)
		}
	}
	return nil
}
