package export_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/testserver"
)

// TestExportEqualsTheMarks captures a workload (snapshots taken while it
// writes, then collections created after the last one) and exports it at
// several of the oracle's marks, without a server: the bson and jsonl
// exports hold exactly each mark's documents, indexes and options, whole
// and under --ns filters (a database, one collection). Then the Done-when
// of issue 14: an archive, and a bson directory, restored by mongorestore
// 100.11.0 into a fresh server equal the mark; and jsonl round-trips every
// BSON type the server stores, byte for byte.
func TestExportEqualsTheMarks(t *testing.T) {
	c := capture(t, 14)
	marks := c.restorable()
	if len(marks) < 3 {
		t.Fatalf("only %d marks are restorable", len(marks))
	}
	if n := c.duringCopy(t, 1); n == 0 {
		t.Fatal("nothing was written while the second snapshot was copied: the test would not cover it")
	} else {
		t.Logf("%d oplog entries written during the second snapshot's copy; %d of %d marks restorable", n, len(marks), len(c.marks))
	}
	last := marks[len(marks)-1]
	for _, ns := range c.late {
		if last.State[ns] == nil || last.State[ns].Docs != 5 {
			t.Fatalf("the last mark lacks %s, created after the snapshots", ns)
		}
	}
	picked := []oracle.Mark{marks[0], marks[len(marks)/2], last}
	t.Run("files equal the marks", func(t *testing.T) {
		for i, m := range picked {
			for _, inc := range [][]string{dbsOf(m), {c.dbs[1]}, {c.dbs[0] + ".plain"}} {
				f := []export.Format{export.BSON, export.JSONL}[i%2]
				d := c.export(t, export.Request{To: at(m), Include: inc, Format: f})
				if err := oracle.CompareDocuments(m, oracle.Filter{Include: inc}, d.documents()); err != nil {
					t.Fatalf("mark %d (%s), --ns %v, %s: %v", m.N, m.TS, inc, f, err)
				}
			}
		}
		t.Logf("%d marks, 3 selections each: exact", len(picked))
	})
	t.Run("the comparison sees a difference", func(t *testing.T) {
		d := c.export(t, export.Request{To: at(last), Include: []string{c.late[0]}, Format: export.BSON}).documents()
		docs := d[c.late[0]]
		docs.Docs = docs.Docs[1:]
		d[c.late[0]] = docs
		var mm *oracle.Mismatch
		if err := oracle.CompareDocuments(last, oracle.Filter{Include: []string{c.late[0]}}, d); !errors.As(err, &mm) || mm.What != "missing document" {
			t.Fatalf("a missing document: %v", err)
		}
	})
	t.Run("jsonl round-trips every BSON type the server stores", func(t *testing.T) {
		c.roundTrip(t, last)
	})
	t.Run("mongorestore 100.11.0 restores them", func(t *testing.T) {
		tools, err := benchtool.BuildMongoTools(benchtool.ModuleRoot(t))
		if errors.Is(err, benchtool.ErrNoMongoToolsScript) {
			t.Skipf("mongorestore 100.11.0 is needed to restore the exports: %v", err)
		}
		must(t, err)
		for i, tc := range []struct {
			mark   oracle.Mark
			format export.Format
			inc    []string
		}{{last, export.Archive, dbsOf(last)}, {marks[len(marks)/2], export.Archive, c.dbs[:1]}, {last, export.BSON, dbsOf(last)}} {
			t.Run(fmt.Sprintf("%s of mark %d", tc.format, tc.mark.N), func(t *testing.T) {
				c.mongorestore(t, tools, i, tc.mark, tc.format, tc.inc)
			})
		}
	})
}

func at(m oracle.Mark) restore.When { return restore.When{TS: m.TS} }

// dbsOf lists the databases mark m holds (the late one only once it exists).
func dbsOf(m oracle.Mark) []string {
	var out []string
	for _, ns := range m.State.Names() {
		if db, _, _ := strings.Cut(ns, "."); len(out) == 0 || out[len(out)-1] != db {
			out = append(out, db)
		}
	}
	return out
}

// export writes an export of the captured repository and reads it back.
func (c *captured) export(t *testing.T, req export.Request) dump {
	t.Helper()
	_, d := exportTo(t, c.repo, req)
	return d
}

// documents is the dump as the oracle compares it.
func (d dump) documents() map[string]oracle.Documents {
	out := map[string]oracle.Documents{}
	for ns, m := range d.meta {
		out[ns] = oracle.Documents{Docs: d.docs[ns], Indexes: m.Indexes, Options: m.Options, View: m.Type == "view"}
	}
	return out
}

// mongorestore exports mark m in format (archive or bson), restores it with
// mongorestore into a fresh server, under new database names (the test
// deployment may be one shared MongoDB), and compares it with the mark.
func (c *captured) mongorestore(t *testing.T, tools string, n int, m oracle.Mark, format export.Format, inc []string) {
	ctx := context.Background()
	out := filepath.Join(t.TempDir(), "export")
	_, d := exportTo(t, c.repo, export.Request{To: at(m), Include: inc, Format: format, Out: out})
	args := []string{"--uri", "", "--quiet", "--dir=" + out}
	if format == export.Archive {
		args[3] = "--archive=" + out
	}
	dst := testserver.Start(t)
	args[1] = dst.URI()
	f := oracle.Filter{Include: inc, Rename: map[string]string{}}
	for i, db := range inc {
		f.Rename[db] = dst.DB(fmt.Sprintf("r%d_%d", n, i))
		args = append(args, "--nsFrom", db+".*", "--nsTo", f.Rename[db]+".*")
	}
	if dst.FerretDB() {
		// mongorestore 100.11.0 puts "ns" in every index spec it sends,
		// which FerretDB refuses ("Index option "ns" is unknown"): it
		// restores the documents, and the indexes are built from the
		// export's metadata here, with what mongorestore would send.
		args = append(args, "--noIndexRestore")
	}
	if b, err := exec.Command(filepath.Join(tools, "mongorestore"), args...).CombinedOutput(); err != nil {
		t.Fatalf("mongorestore %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	if dst.FerretDB() {
		buildIndexes(t, dst, d, f)
	}
	if err := oracle.Compare(ctx, dst.Client(), m, f); err != nil {
		t.Fatalf("mark %d (%s), %s restored by mongorestore: %v", m.N, m.TS, format, err)
	}
}

// buildIndexes creates the dump's secondary indexes on the target.
func buildIndexes(t *testing.T, dst *testserver.Server, d dump, f oracle.Filter) {
	for ns, m := range d.meta {
		var specs bson.A
		for _, ix := range m.Indexes {
			var spec bson.D // as mongorestore sends it, without v and ns
			must(t, bson.Unmarshal(ix, &spec))
			spec = slices.DeleteFunc(spec, func(e bson.E) bool { return e.Key == "v" || e.Key == "ns" })
			if ix.Lookup("name").StringValue() != "_id_" {
				specs = append(specs, spec)
			}
		}
		if len(specs) == 0 {
			continue
		}
		db, coll, _ := strings.Cut(ns, ".")
		tdb, tcoll := f.Target(db, coll)
		must(t, dst.Client().Database(tdb).RunCommand(context.Background(), bson.D{{Key: "createIndexes", Value: tcoll}, {Key: "indexes", Value: specs}}).Err())
	}
}

// roundTrip exports mark m (the source's current state) as jsonl and checks
// that every line, decoded from canonical Extended JSON, is the source's
// document byte for byte, and that the documents use every BSON type the
// source's do.
func (c *captured) roundTrip(t *testing.T, m oracle.Mark) {
	ctx := context.Background()
	d := c.export(t, export.Request{To: at(m), Include: dbsOf(m), Format: export.JSONL})
	srcTypes, gotTypes := map[bson.Type]bool{}, map[bson.Type]bool{}
	n := 0
	for ns, docs := range d.docs {
		db, coll, _ := strings.Cut(ns, ".")
		cur, err := c.srv.Client().Database(db).Collection(coll).Find(ctx, bson.D{})
		must(t, err)
		var src []bson.Raw
		for cur.Next(ctx) {
			src = append(src, append(bson.Raw(nil), cur.Current...))
			typesOf(cur.Current, srcTypes)
		}
		must(t, cur.Err())
		want, got := byID(t, src), byID(t, docs)
		if len(want) != len(got) {
			t.Fatalf("%s: %d lines, the source holds %d documents", ns, len(got), len(want))
		}
		for id, doc := range want {
			if !bytesEqual(got[id], doc) {
				t.Fatalf("%s: the line decodes to %s, the source holds %s", ns, got[id], doc)
			}
			typesOf(got[id], gotTypes)
			n++
		}
	}
	var names []string
	for ty := range srcTypes {
		names = append(names, ty.String())
		if !gotTypes[ty] {
			t.Errorf("type %s is in the source's documents, not in the export's", ty)
		}
	}
	if len(srcTypes) < 12 {
		t.Errorf("the source's documents use only %d BSON types (%v): the workload should write more", len(srcTypes), names)
	}
	t.Logf("%d documents, byte for byte; BSON types: %s", n, strings.Join(names, ", "))
}

// typesOf adds the type of every value in doc, nested ones included.
func typesOf(doc bson.Raw, seen map[bson.Type]bool) {
	els, _ := doc.Elements()
	for _, e := range els {
		v := e.Value()
		seen[v.Type] = true
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			typesOf(v.Document(), seen)
		case bson.TypeArray:
			typesOf(bson.Raw(v.Array()), seen)
		}
	}
}
