package export_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/export"
)

// meta is a namespace's metadata as mongodump writes it.
type meta struct {
	Options        bson.Raw   `bson:"options"`
	Indexes        []bson.Raw `bson:"indexes"`
	CollectionName string     `bson:"collectionName"`
	Type           string     `bson:"type"`
}

// dump is an export read back: every namespace's metadata and documents.
type dump struct {
	meta map[string]meta
	docs map[string][]bson.Raw
}

func newDump() dump { return dump{meta: map[string]meta{}, docs: map[string][]bson.Raw{}} }

// readArchive parses a mongodump archive as mongorestore does, checking
// what it checks: the magic number, the prelude, that every block of
// documents ends with a terminator, that every namespace of the prelude is
// closed once by an EOF header carrying the CRC-64 of its documents.
func readArchive(t *testing.T, b []byte) dump {
	t.Helper()
	fail := func(format string, args ...any) { t.Helper(); t.Fatalf("archive: "+format, args...) }
	if len(b) < 4 || binary.LittleEndian.Uint32(b) != 0x8199e26d {
		fail("no magic number")
	}
	b = b[4:]
	next := func() (bson.Raw, bool) { // a document, or false at a terminator
		t.Helper()
		if len(b) < 4 {
			fail("cut short")
		}
		n := int(int32(binary.LittleEndian.Uint32(b)))
		if n == -1 {
			b = b[4:]
			return nil, false
		}
		if n < 5 || n > len(b) {
			fail("bad document length %d", n)
		}
		d := bson.Raw(b[:n])
		if err := d.Validate(); err != nil {
			fail("invalid document: %v", err)
		}
		b = b[n:]
		return d, true
	}
	header, ok := next()
	if !ok || header.Lookup("version").StringValue() != "0.1" {
		fail("header %s", header)
	}
	d := newDump()
	status := map[string]string{}
	for {
		m, ok := next()
		if !ok {
			break
		}
		ns := m.Lookup("db").StringValue() + "." + m.Lookup("collection").StringValue()
		var md meta
		if err := bson.UnmarshalExtJSON([]byte(m.Lookup("metadata").StringValue()), true, &md); err != nil {
			fail("metadata of %s: %v", ns, err)
		}
		d.meta[ns], status[ns] = md, "prelude"
	}
	sums := map[string]*crcSum{}
	for len(b) > 0 {
		h, ok := next()
		if !ok {
			fail("two terminators in a row")
		}
		ns := h.Lookup("db").StringValue() + "." + h.Lookup("collection").StringValue()
		if status[ns] == "" || status[ns] == "closed" {
			fail("block of %s, which is %q", ns, status[ns])
		}
		if sums[ns] == nil {
			sums[ns] = &crcSum{}
		}
		if h.Lookup("EOF").Boolean() {
			if crc := h.Lookup("CRC").Int64(); crc != int64(sums[ns].sum) {
				fail("CRC of %s: %d, documents hash to %d", ns, crc, int64(sums[ns].sum))
			}
			if _, ok := next(); ok {
				fail("EOF header of %s not followed by a terminator", ns)
			}
			status[ns] = "closed"
			continue
		}
		status[ns] = "open"
		for {
			doc, ok := next()
			if !ok {
				break
			}
			sums[ns].add(doc)
			d.docs[ns] = append(d.docs[ns], doc)
		}
	}
	for ns, s := range status {
		if s != "closed" {
			fail("%s is %s at the end", ns, s)
		}
	}
	return d
}

type crcSum struct{ sum uint64 }

func (c *crcSum) add(b []byte) { c.sum = crc64.Update(c.sum, crc64.MakeTable(crc64.ECMA), b) }

// readDir reads a bson or jsonl export directory: every DB/NAME.metadata.json
// names its collection, and NAME must be export.FileName of it.
func readDir(t *testing.T, root string, format export.Format) dump {
	t.Helper()
	d := newDump()
	files, err := filepath.Glob(filepath.Join(root, "*", "*.metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var md meta
		if err := bson.UnmarshalExtJSON(b, true, &md); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		base := strings.TrimSuffix(filepath.Base(f), ".metadata.json")
		if base != export.FileName(md.CollectionName) {
			t.Fatalf("%s holds collection %q, whose file name is %q", f, md.CollectionName, export.FileName(md.CollectionName))
		}
		ns := filepath.Base(filepath.Dir(f)) + "." + md.CollectionName
		d.meta[ns] = md
		data := strings.TrimSuffix(f, ".metadata.json") + "." + string(format)
		if md.Type == "view" {
			if _, err := os.Stat(data); err == nil {
				t.Fatalf("view %s has a data file %s", ns, data)
			}
			continue
		}
		d.docs[ns] = readDocs(t, data, format)
	}
	return d
}

// readDocs reads a .bson file (concatenated documents) or a .jsonl file
// (each line decoded from canonical Extended JSON).
func readDocs(t *testing.T, path string, format export.Format) []bson.Raw {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []bson.Raw
	if format == export.JSONL {
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			var doc bson.Raw
			if err := bson.UnmarshalExtJSON(sc.Bytes(), true, &doc); err != nil {
				t.Fatalf("%s: line %d: %v", path, len(out)+1, err)
			}
			out = append(out, doc)
		}
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	return readDocsFrom(t, b)
}

// readDocsFrom splits concatenated BSON documents.
func readDocsFrom(t *testing.T, b []byte) []bson.Raw {
	t.Helper()
	var out []bson.Raw
	for len(b) > 0 {
		n := int(binary.LittleEndian.Uint32(b))
		if n < 5 || n > len(b) {
			t.Fatalf("bad document length %d", n)
		}
		out = append(out, bson.Raw(b[:n]))
		b = b[n:]
	}
	return out
}

// byID maps documents by their _id (type and bytes).
func byID(t *testing.T, docs []bson.Raw) map[string]bson.Raw {
	t.Helper()
	out := map[string]bson.Raw{}
	for _, d := range docs {
		id, err := d.LookupErr("_id")
		if err != nil {
			t.Fatalf("document without _id: %s", d)
		}
		k := fmt.Sprintf("%d:%x", id.Type, id.Value)
		if _, dup := out[k]; dup {
			t.Fatalf("_id %s twice", id)
		}
		out[k] = d
	}
	return out
}
