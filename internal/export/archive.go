package export

import (
	"encoding/binary"
	"fmt"
	"hash"
	"hash/crc64"
	"math"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// The mongodump archive format (mongo-tools common/archive, format version
// 0.1; docs/FORMAT.md "Export formats" says it in full):
//
//	archive   = magic, header, *collection-metadata, terminator, *(block)
//	block     = namespace-header, *document, terminator      (EOF false)
//	          | eof-header, terminator                       (EOF true, CRC)
//
// magic is 0x8199e26d as a little-endian uint32; terminator is the four
// bytes 0xffffffff, which no BSON document can start with. Every
// namespace of the prelude must be opened and closed by its EOF header,
// views included (with no documents): mongorestore refuses an archive that
// ends with one unseen.
const (
	archiveMagic   uint32 = 0x8199e26d
	archiveVersion        = "0.1"
)

var terminator = []byte{0xff, 0xff, 0xff, 0xff}

// archive writes a mongodump archive: the prelude at begin (so every
// namespace's metadata is known before any document), then each namespace
// in one block and its EOF header with the CRC-64 (ECMA) of its documents.
type archive struct {
	out  output
	tool string
	crc  hash.Hash64
	err  error
}

var crcTable = crc64.MakeTable(crc64.ECMA)

func (a *archive) write(b []byte) {
	if a.err == nil {
		_, a.err = a.out.Write(b)
	}
}

func (a *archive) writeDoc(v any) {
	if a.err != nil {
		return
	}
	b, err := bson.Marshal(v)
	if err != nil {
		a.err = err
		return
	}
	a.write(b)
}

func (a *archive) failed(what string) error {
	if a.err != nil {
		return fmt.Errorf("write the archive: %s: %w", what, a.err)
	}
	return nil
}

func (a *archive) begin(nss []Namespace) error {
	a.write(binary.LittleEndian.AppendUint32(nil, archiveMagic))
	a.writeDoc(bson.D{{Key: "concurrent_collections", Value: int32(1)}, {Key: "version", Value: archiveVersion},
		{Key: "server_version", Value: ""}, {Key: "tool_version", Value: a.tool}})
	for _, n := range nss {
		meta, err := metadataJSON(n)
		if err != nil {
			return err
		}
		typ := ""
		if n.View {
			typ = "view"
		}
		a.writeDoc(bson.D{{Key: "db", Value: n.DB}, {Key: "collection", Value: n.Coll}, {Key: "metadata", Value: string(meta)},
			{Key: "size", Value: sizeValue(n.Bytes)}, {Key: "type", Value: typ}})
	}
	a.write(terminator)
	return a.failed("prelude")
}

// sizeValue is the prelude's size: an int32 when it fits, as mongodump's
// encoder writes a Go int.
func sizeValue(n int64) any {
	if n <= math.MaxInt32 {
		return int32(n)
	}
	return n
}

func (a *archive) header(n Namespace, eof bool, crc int64) {
	a.writeDoc(bson.D{{Key: "db", Value: n.DB}, {Key: "collection", Value: n.Coll}, {Key: "EOF", Value: eof}, {Key: "CRC", Value: crc}})
}

func (a *archive) start(n Namespace) error {
	a.crc = crc64.New(crcTable)
	a.header(n, false, 0)
	return a.failed(n.String())
}

func (a *archive) doc(d bson.Raw) error {
	a.crc.Write(d)
	a.write(d)
	return a.failed("document")
}

func (a *archive) end(n Namespace) error {
	a.write(terminator)
	a.header(n, true, int64(a.crc.Sum64()))
	a.write(terminator)
	return a.failed(n.String())
}

func (a *archive) commit() error { return a.out.commit() }
func (a *archive) abort()        { a.out.abort() }
