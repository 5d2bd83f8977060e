package replay_test

import (
	"context"
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
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/oplog/replay"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// unsupportedOnFerretDB lists the vectors that need something the embedded
// FerretDB test server lacks, with the reason. On FerretDB they still run:
// a failure is reported as a skip naming the reason, and one that passes
// fails the test so the list stays honest. Against a real MongoDB
// ($REWIND_TEST_MONGODB_URI) they run and must pass like every other vector.
var unsupportedOnFerretDB = map[string]string{
	"ddl-collmod-ttl":                   "FerretDB has no TTL indexes (expireAfterSeconds) and no collMod",
	"ddl-create-indexes":                "FerretDB has no partial indexes (partialFilterExpression) and no TTL indexes",
	"ddl-collmod-validator-bypass":      "FerretDB has no collMod (and no validators)",
	"ddl-convert-to-capped":             "FerretDB has no convertToCapped",
	"ddl-create-collation":              "FerretDB's create has no collation",
	"ddl-create-validator":              "FerretDB's create has no validator",
	"ddl-create-view":                   "FerretDB has no views",
	"ddl-rename-across-db-modern":       "FerretDB's renameCollection refuses collection names with a dot (tmpXXXXX.renameCollection)",
	"ddl-rename-across-db-single-entry": "FerretDB's renameCollection does not rename across databases",
	"v2-array-noncontiguous-subarrays":  "FerretDB refuses nested arrays in documents",
	"v2-array-of-arrays":                "FerretDB refuses nested arrays in documents",
	"v2-dollar-field-name":              "FerretDB refuses field names starting with $",
	"v2-dotted-field-name":              "FerretDB refuses field names containing a dot",
}

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

// vectorsDir is the directory in $REWIND_OPLOG_VECTORS, else
// shared/oplog/vectors beside the repository (the authoritative set, which
// CI checks out next to it), else testdata/vectors: a copy of that set made
// on 2026-11-25, so that a lone clone of the repository tests too.
func vectorsDir(t testing.TB) string {
	if dir := os.Getenv("REWIND_OPLOG_VECTORS"); dir != "" {
		return dir
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; filepath.Dir(dir) != dir; dir = filepath.Dir(dir) {
		cand := filepath.Join(dir, "shared", "oplog", "vectors")
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand
		}
	}
	t.Logf("no shared/oplog/vectors above %s: using the copy in testdata/vectors", wd)
	return filepath.Join("testdata", "vectors")
}

func loadVectors(t testing.TB) []vector {
	dir := vectorsDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no vectors in %s (%v)", dir, err)
	}
	sort.Strings(files)
	var out []vector
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
		out = append(out, v)
	}
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
	passed := 0
	for i, v := range vectors {
		ok := t.Run(v.Name, func(t *testing.T) {
			prefix := srv.DB(fmt.Sprintf("v%03d_", i))
			problems := runVector(t, srv.Client(), prefix, v, !srv.FerretDB(), deferIndexes)
			reason, unsupported := unsupportedOnFerretDB[v.Name]
			switch {
			case unsupported && srv.FerretDB() && len(problems) > 0:
				t.Skipf("unsupported on FerretDB (%s): %s", reason, problems[0])
			case unsupported && srv.FerretDB():
				t.Errorf("passes on FerretDB now: remove it from unsupportedOnFerretDB (%s)", reason)
			default:
				for _, p := range problems {
					t.Error(p)
				}
			}
		})
		if ok {
			passed++
		}
	}
	t.Logf("%d of %d vectors passed (or were skipped as unsupported)", passed, len(vectors))
}

// runVector loads before, replays entries and compares with after. It
// returns the differences found (nil when the vector passes).
func runVector(t *testing.T, c *mongo.Client, prefix string, v vector, mongodb, deferIndexes bool) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := load(ctx, c, prefix, v.Before); err != nil {
		return []string{err.Error()}
	}
	a := replay.Applier{
		Client:          c,
		Map:             func(db, coll string) (string, string, bool) { return prefix + db, coll, true },
		Log:             slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		SkipFromMigrate: strings.HasPrefix(v.About, "SHARDED-CLUSTER"),
		DeferIndexes:    deferIndexes,
	}
	var st replay.Stats
	var err error
	if deferIndexes {
		// One Apply per entry: transactions, temp collections and the index
		// catalog must survive between calls.
		for _, e := range v.Entries {
			s, aerr := a.Apply(ctx, []bson.Raw{e})
			st.Add(s)
			if err = aerr; err != nil {
				break
			}
		}
		if err == nil {
			_, err = a.BuildIndexes(ctx)
		}
	} else {
		st, err = a.Apply(ctx, v.Entries)
	}
	t.Logf("stats %+v", st)
	if err != nil {
		return []string{fmt.Sprintf("apply: %v", err)}
	}
	if st.Entries != int64(len(v.Entries)) {
		return []string{fmt.Sprintf("stats count %d entries, want %d", st.Entries, len(v.Entries))}
	}
	var problems []string
	problems = append(problems, compareNamespaces(ctx, c, prefix, v.After)...)
	problems = append(problems, compareDocuments(ctx, c, prefix, v.After, mongodb)...)
	problems = append(problems, compareIndexes(ctx, c, prefix, v.AfterIndexes)...)
	problems = append(problems, compareOptions(ctx, c, prefix, v.AfterOptions)...)
	return problems
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
			return fmt.Errorf("load before: create %s: %w", e.Key(), err)
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
			return fmt.Errorf("load before: insert into %s: %w", e.Key(), err)
		}
	}
	return nil
}

// namespaces lists the collections (not views) under prefix, as source names.
func namespaces(ctx context.Context, c *mongo.Client, prefix string) ([]string, error) {
	dbs, err := c.ListDatabaseNames(ctx, bson.D{})
	if err != nil {
		return nil, err
	}
	var out []string
	for _, db := range dbs {
		if !strings.HasPrefix(db, prefix) {
			continue
		}
		specs, err := c.Database(db).ListCollectionSpecifications(ctx, bson.D{})
		if err != nil {
			return nil, err
		}
		for _, s := range specs {
			if s.Type == "" || s.Type == "collection" {
				out = append(out, strings.TrimPrefix(db, prefix)+"."+s.Name)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

func compareNamespaces(ctx context.Context, c *mongo.Client, prefix string, after bson.Raw) []string {
	got, err := namespaces(ctx, c, prefix)
	if err != nil {
		return []string{fmt.Sprintf("list namespaces: %v", err)}
	}
	var want []string
	els, _ := after.Elements()
	for _, e := range els {
		want = append(want, e.Key())
	}
	sort.Strings(want)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		return []string{fmt.Sprintf("namespaces: got %v, want %v", got, want)}
	}
	return nil
}

// compareDocuments compares each namespace's documents byte for byte, as a
// set (ordered by _id on both sides, duplicates counted).
func compareDocuments(ctx context.Context, c *mongo.Client, prefix string, after bson.Raw, mongodb bool) []string {
	var problems []string
	els, _ := after.Elements()
	for _, e := range els {
		db, coll, _ := strings.Cut(e.Key(), ".")
		cur, err := c.Database(prefix+db).Collection(coll).Find(ctx, bson.D{}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}))
		if err != nil {
			problems = append(problems, fmt.Sprintf("read %s: %v", e.Key(), err))
			continue
		}
		count := map[string]int{}
		for cur.Next(ctx) {
			count[string(cur.Current)]++
		}
		cur.Close(ctx)
		wantDocs, _ := e.Value().Array().Values()
		for _, w := range wantDocs {
			doc := w.Document()
			if coll == "system.views" && mongodb {
				doc = prefixViewID(doc, prefix)
			}
			if count[string(doc)] == 0 {
				problems = append(problems, fmt.Sprintf("%s: missing %s", e.Key(), doc))
				continue
			}
			count[string(doc)]--
		}
		for doc, n := range count {
			for ; n > 0; n-- {
				problems = append(problems, fmt.Sprintf("%s: unexpected %s", e.Key(), bson.Raw(doc)))
			}
		}
	}
	return problems
}

// prefixViewID maps a system.views document's _id ("db.view") the way the
// test's Map maps database names.
func prefixViewID(doc bson.Raw, prefix string) bson.Raw {
	var d bson.D
	if err := bson.Unmarshal(doc, &d); err != nil {
		return doc
	}
	for i := range d {
		if s, ok := d[i].Value.(string); ok && d[i].Key == "_id" {
			d[i].Value = prefix + s
		}
	}
	out, err := bson.Marshal(d)
	if err != nil {
		return doc
	}
	return out
}
