package export

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FileName is the name (without extension) of a collection's files in a
// bson or jsonl export, mongodump's rule, so that mongorestore reads the
// collection's name back: the name query-escaped (url.QueryEscape: a
// space is "+", "/" is "%2F", every byte outside letters, digits and
// "-_.~" is %XX, so unicode is escaped byte by byte; dots stay). An
// escaped name over 238 bytes is cut to its first 208 bytes, then "%24"
// and the unpadded base64url SHA-1 of the name (238 bytes in all); the
// full name is then read from the collectionName of its metadata.json.
// Database names are used as they are: MongoDB allows none of / \ . " $
// or spaces in them.
func FileName(coll string) string {
	name := url.QueryEscape(coll)
	if len(name) <= 238 {
		return name
	}
	sum := sha1.Sum([]byte(coll))
	return name[:208] + "%24" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// metadataJSON is a namespace's metadata as mongodump writes it, canonical
// Extended JSON: {"options": …, "indexes": […], "collectionName": …,
// "type": "collection"|"view"} (options left out when there are none).
func metadataJSON(n Namespace) ([]byte, error) {
	var d bson.D
	if len(n.Options) > 5 { // 5 bytes: the empty document
		d = append(d, bson.E{Key: "options", Value: n.Options})
	}
	indexes := bson.A{}
	for _, ix := range n.Indexes {
		indexes = append(indexes, ix)
	}
	typ := "collection"
	if n.View {
		typ = "view"
	}
	d = append(d, bson.E{Key: "indexes", Value: indexes}, bson.E{Key: "collectionName", Value: n.Coll}, bson.E{Key: "type", Value: typ})
	b, err := bson.MarshalExtJSON(d, true, false)
	if err != nil {
		return nil, fmt.Errorf("write metadata of %s: %w", n, err)
	}
	return b, nil
}

// docWriter writes documents in a format: raw BSON, concatenated, or
// canonical Extended JSON, one document per line.
func docWriter(w io.Writer, f Format) func(bson.Raw) error {
	if f != JSONL {
		return func(doc bson.Raw) error {
			_, err := w.Write(doc)
			return err
		}
	}
	enc := bson.NewEncoder(bson.NewExtJSONValueWriter(w, true, false)) // ends each document with a newline
	return func(doc bson.Raw) error {
		if field := wrapperLike(doc, ""); field != "" {
			return fmt.Errorf("write the document with _id %s as Extended JSON: its embedded document %s begins with a field that Extended JSON reads as a type ({\"$oid\": …}, {\"$numberInt\": …}), so it has no Extended JSON form; export it with --format bson or archive",
				doc.Lookup("_id"), field)
		}
		if err := enc.Encode(doc); err != nil {
			return fmt.Errorf("write the document with _id %s as Extended JSON: %w", doc.Lookup("_id"), err)
		}
		return nil
	}
}

// typeKeys are the first fields that make the Extended JSON parser read an
// object as a typed value rather than a document.
var typeKeys = map[string]bool{"$numberInt": true, "$numberLong": true, "$oid": true, "$symbol": true,
	"$numberDouble": true, "$numberDecimal": true, "$binary": true, "$code": true, "$scope": true,
	"$timestamp": true, "$regularExpression": true, "$dbPointer": true, "$date": true, "$minKey": true,
	"$maxKey": true, "$undefined": true, "$uuid": true}

// wrapperLike returns the path of the first embedded document in doc whose
// first field is one of typeKeys (MongoDB 5.0+ stores such fields), or "":
// written as Extended JSON it would read back as another value.
func wrapperLike(doc bson.Raw, path string) string {
	els, _ := doc.Elements()
	for _, e := range els {
		v, p := e.Value(), path+e.Key()
		var sub bson.Raw
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			sub = v.Document()
			if first, err := sub.IndexErr(0); err == nil && typeKeys[first.Key()] {
				return p
			}
		case bson.TypeArray:
			sub = bson.Raw(v.Array())
		case bson.TypeCodeWithScope:
			_, sub = v.CodeWithScope()
		default:
			continue
		}
		if found := wrapperLike(sub, p+"."); found != "" {
			return found
		}
	}
	return ""
}

// dir writes a directory export (bson or jsonl): DB/NAME.bson or
// DB/NAME.jsonl with DB/NAME.metadata.json for each collection, the
// metadata alone for a view. It writes under a temporary directory beside
// the final one and renames it into place when committed.
type dir struct {
	final, root string
	format      Format
	f           *os.File
	w           *bufio.Writer
	write       func(bson.Raw) error
	ns          string // the namespace being written
}

func (d *dir) begin(nss []Namespace) error {
	// Owner only: the export holds the deployment's data.
	for _, n := range nss {
		if err := os.MkdirAll(filepath.Join(d.root, n.DB), 0o700); err != nil {
			return fmt.Errorf("create the output directory: %w", err)
		}
	}
	return nil
}

func (d *dir) path(n Namespace, ext string) string {
	return filepath.Join(d.root, n.DB, FileName(n.Coll)+ext)
}

func (d *dir) start(n Namespace) error {
	meta, err := metadataJSON(n)
	if err != nil {
		return err
	}
	if err := os.WriteFile(d.path(n, ".metadata.json"), meta, 0o600); err != nil {
		return fmt.Errorf("write metadata of %s: %w", n, err)
	}
	if n.View {
		return nil
	}
	d.ns = n.String()
	if d.f, err = os.OpenFile(d.path(n, "."+string(d.format)), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", n, err)
	}
	d.w = bufio.NewWriterSize(d.f, 1<<20)
	d.write = docWriter(d.w, d.format)
	return nil
}

func (d *dir) doc(doc bson.Raw) error {
	if err := d.write(doc); err != nil {
		return fmt.Errorf("write %s: %w", d.ns, err)
	}
	return nil
}

func (d *dir) end(n Namespace) error {
	if d.f == nil {
		return nil
	}
	err := d.w.Flush()
	if err == nil {
		err = d.f.Sync()
	}
	if cerr := d.f.Close(); err == nil {
		err = cerr
	}
	d.f = nil
	if err != nil {
		return fmt.Errorf("write %s: %w", n, err)
	}
	return nil
}

// commit renames the directory into place; an empty directory already
// there (Validate allows only that) is removed first.
func (d *dir) commit() error {
	if err := os.Remove(d.final); err != nil && !os.IsNotExist(err) {
		d.abort()
		return fmt.Errorf("replace %s: %w (it must be new or empty)", d.final, err)
	}
	if err := os.Rename(d.root, d.final); err != nil {
		d.abort()
		return fmt.Errorf("move the export into %s: %w", d.final, err)
	}
	return nil
}

func (d *dir) abort() {
	if d.f != nil {
		d.f.Close()
	}
	os.RemoveAll(d.root)
}

// single writes the documents of the one collection of an export to a
// stream: concatenated BSON (what `mongorestore --db D --collection C -`
// reads) or Extended JSON lines.
type single struct {
	out    *stream
	format Format
	write  func(bson.Raw) error
}

func (s *single) begin(nss []Namespace) error {
	names := make([]string, len(nss))
	for i, n := range nss {
		names[i] = n.String()
		if n.View {
			names[i] += " (view)"
		}
	}
	s.write = docWriter(s.out, s.format)
	return oneCollection(s.format, names)
}

func (s *single) start(Namespace) error { return nil }

func (s *single) doc(doc bson.Raw) error {
	if err := s.write(doc); err != nil {
		return fmt.Errorf("write the output: %w", err)
	}
	return nil
}

func (s *single) end(Namespace) error { return nil }
func (s *single) commit() error       { return s.out.commit() }
func (s *single) abort()              { s.out.abort() }
