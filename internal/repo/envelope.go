package repo

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"slices"

	"filippo.io/age"
	"github.com/klauspost/compress/zstd"
)

// MaxObjectSize bounds the plaintext of one object. Decoders refuse larger
// length fields before allocating, so a corrupt header cannot make them
// allocate more than this.
const MaxObjectSize = 256 << 20

const (
	envelopeMagic   = "RWND"
	envelopeVersion = 1
	headerSize      = 12 // magic, version, flags, kind, reserved, crc32c
	innerHeaderSize = 40 // plaintext length (uint64 BE), sha256 of plaintext
	flagZstd        = 1 << 0
	flagAge         = 1 << 1
	knownFlags      = flagZstd | flagAge
	// maxEncodedSize bounds what a decoder reads from the store: the largest
	// plaintext plus generous room for age and zstd framing.
	maxEncodedSize = MaxObjectSize + MaxObjectSize/8 + 1<<20
)

// Kind is the type of an object, stored in its envelope header so an object
// copied under the wrong key is detected.
type Kind byte

// Object kinds. Values are part of the on-disk format: never renumber.
const (
	KindConfig    Kind = 1
	KindSegment   Kind = 2
	KindGap       Kind = 3
	KindTimeline  Kind = 4
	KindChunk     Kind = 5
	KindManifest  Kind = 6
	KindHeartbeat Kind = 7
	KindLock      Kind = 8
	KindIndex     Kind = 9  // a segment's index (oplog-index/)
	KindTopology  Kind = 10 // a sharded cluster's topology record (topology/)
	KindDrill     Kind = 11 // a drill record (drills/)
	// KindClusterManifest is a cluster snapshot's manifest (clusters/):
	// data, since its routing metadata names namespaces.
	KindClusterManifest Kind = 12
	// KindBalancer records a balancer a cluster snapshot stopped.
	KindBalancer Kind = 13
	// KindAudit is an audit entry (audit/): who restored, undid, pruned or
	// broke a lock.
	KindAudit Kind = 14
)

// String names the kind in messages.
func (k Kind) String() string {
	names := map[Kind]string{
		KindConfig: "config", KindSegment: "oplog segment", KindGap: "gap",
		KindTimeline: "timeline", KindChunk: "snapshot chunk", KindManifest: "snapshot manifest",
		KindHeartbeat: "heartbeat", KindLock: "lock", KindIndex: "oplog segment index",
		KindTopology: "cluster topology", KindDrill: "drill record", KindClusterManifest: "cluster snapshot manifest",
		KindBalancer: "balancer record", KindAudit: "audit entry",
	}
	if n, ok := names[k]; ok {
		return n
	}
	return fmt.Sprintf("kind %d", byte(k))
}

// isData reports whether objects of kind k carry user data (documents,
// oplog entries, namespace names: a segment index names namespaces). Only
// those are compressed and encrypted; metadata objects must stay readable
// by a writer that has no identity.
func (k Kind) isData() bool {
	return k == KindSegment || k == KindChunk || k == KindManifest || k == KindIndex || k == KindDrill || k == KindClusterManifest || k == KindAudit
}

// codec turns plaintext into envelopes and back. It is safe for concurrent
// use.
type codec struct {
	compress   bool
	level      zstd.EncoderLevel // 0: zstd.SpeedDefault
	recipients []age.Recipient   // nil: do not encrypt
	identities []age.Identity    // nil: cannot decrypt
}

// encode wraps plaintext in an envelope of the given kind, in a new buffer.
func (c *codec) encode(kind Kind, plaintext []byte) ([]byte, error) {
	obj, _, err := c.encodeTo(nil, kind, plaintext)
	return obj, err
}

// encodeTo wraps plaintext in an envelope of the given kind, appended to
// dst[:0] (grown as needed), and returns it with the plaintext's SHA-256.
func (c *codec) encodeTo(dst []byte, kind Kind, plaintext []byte) ([]byte, [32]byte, error) {
	sum := sha256.Sum256(plaintext)
	if len(plaintext) > MaxObjectSize {
		return nil, sum, fmt.Errorf("encode %s: %d bytes exceeds the %d-byte object limit: %w",
			kind, len(plaintext), MaxObjectSize, ErrInvalid)
	}
	var flags byte
	compress := c.compress && kind.isData()
	encrypt := c.recipients != nil && kind.isData()
	if compress {
		flags |= flagZstd
	}
	if encrypt {
		flags |= flagAge
	}
	out := slices.Grow(dst[:0], headerSize+innerHeaderSize+len(plaintext)/2+512)
	out = append(out, envelopeMagic...)
	out = append(out, envelopeVersion, flags, byte(kind), 0, 0, 0, 0, 0)
	if !encrypt {
		out, err := c.appendPayload(appendInner(out, plaintext, sum), plaintext, compress)
		if err != nil {
			return nil, sum, err
		}
		return sealCRC(out), sum, nil
	}
	// The inner part is encrypted, so it needs its own buffer.
	inner := appendInner(getBuf(innerHeaderSize+len(plaintext)/2+64), plaintext, sum)
	body, err := c.appendPayload(inner, plaintext, compress)
	defer func() { putBuf(body) }()
	if err != nil {
		return nil, sum, err
	}
	buf := bytes.NewBuffer(out)
	w, err := age.Encrypt(buf, c.recipients...)
	if err != nil {
		return nil, sum, fmt.Errorf("encrypt %s: %w", kind, err)
	}
	if _, err := w.Write(body); err != nil {
		return nil, sum, fmt.Errorf("encrypt %s: %w", kind, err)
	}
	if err := w.Close(); err != nil {
		return nil, sum, fmt.Errorf("encrypt %s: %w", kind, err)
	}
	return sealCRC(buf.Bytes()), sum, nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealCRC stores in bytes 8..11 the CRC-32C of the rest of the object, so
// that any change of the stored bytes is detected, even one the zstd or age
// framing would tolerate without changing the plaintext.
func sealCRC(obj []byte) []byte {
	crc := crc32.Update(crc32.Checksum(obj[:8], castagnoli), castagnoli, obj[headerSize:])
	binary.BigEndian.PutUint32(obj[8:headerSize], crc)
	return obj
}

func appendInner(dst, plaintext []byte, sum [32]byte) []byte {
	dst = binary.BigEndian.AppendUint64(dst, uint64(len(plaintext)))
	return append(dst, sum[:]...)
}

func (c *codec) appendPayload(dst, plaintext []byte, compress bool) ([]byte, error) {
	if !compress {
		return append(dst, plaintext...), nil
	}
	enc, err := getEncoder(c.level)
	if err != nil {
		return dst, err
	}
	defer putEncoder(c.level, enc)
	return enc.EncodeAll(plaintext, dst), nil
}

// sourceReader remembers an error of the underlying store reader so a
// network failure mid-object is reported as such, not as corruption.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// decode reads one envelope of the given kind from r and returns the
// plaintext and its sha256. key names the object in every error.
func (c *codec) decode(key string, kind Kind, r io.Reader) ([]byte, [32]byte, error) {
	src := &sourceReader{r: io.LimitReader(r, maxEncodedSize)}
	plain, sum, err := c.decodeFrom(key, kind, src)
	if err != nil && src.err != nil {
		return nil, sum, fmt.Errorf("read object %s: %w", key, src.err)
	}
	return plain, sum, err
}

func (c *codec) decodeFrom(key string, kind Kind, src io.Reader) ([]byte, [32]byte, error) {
	var sum [32]byte
	flags, wantCRC, err := readHeader(key, kind, src)
	if err != nil {
		return nil, sum, err
	}
	crc := crc32.New(castagnoli)
	crc.Write([]byte{envelopeMagic[0], envelopeMagic[1], envelopeMagic[2], envelopeMagic[3],
		envelopeVersion, flags, byte(kind), 0})
	src = io.TeeReader(src, crc)
	body := src
	if flags&flagAge != 0 {
		if body, err = c.decrypt(key, src); err != nil {
			// A damaged recipient stanza looks like a wrong key: the CRC
			// tells the two apart.
			if _, derr := io.Copy(io.Discard, src); derr != nil || crc.Sum32() != wantCRC {
				return nil, sum, corrupt(key, "crc32c mismatch")
			}
			return nil, sum, err
		}
	} else if c.recipients != nil && kind.isData() {
		return nil, sum, corrupt(key, "object is not encrypted but the repository is")
	}
	var inner [innerHeaderSize]byte
	if _, err := io.ReadFull(body, inner[:]); err != nil {
		return nil, sum, corrupt(key, "truncated header: %v", err)
	}
	n := binary.BigEndian.Uint64(inner[:8])
	copy(sum[:], inner[8:])
	if n > MaxObjectSize {
		return nil, sum, corrupt(key, "plaintext length %d exceeds the %d-byte limit", n, MaxObjectSize)
	}
	plain, err := readPayload(body, n, flags&flagZstd != 0)
	if err != nil {
		return nil, sum, corrupt(key, "%v", err)
	}
	if _, err := io.Copy(io.Discard, src); err != nil {
		return nil, sum, corrupt(key, "read trailer: %v", err)
	}
	if crc.Sum32() != wantCRC {
		return nil, sum, corrupt(key, "crc32c mismatch")
	}
	if sha256.Sum256(plain) != sum {
		return nil, sum, corrupt(key, "sha256 mismatch")
	}
	return plain, sum, nil
}

func readHeader(key string, kind Kind, src io.Reader) (byte, uint32, error) {
	var hdr [headerSize]byte
	if _, err := io.ReadFull(src, hdr[:]); err != nil {
		return 0, 0, corrupt(key, "truncated header: %v", err)
	}
	flags, err := checkHeader(key, kind, hdr)
	return flags, binary.BigEndian.Uint32(hdr[8:]), err
}

func checkHeader(key string, kind Kind, hdr [headerSize]byte) (byte, error) {
	if string(hdr[:4]) != envelopeMagic {
		return 0, corrupt(key, "bad magic %q: not a rewind object", hdr[:4])
	}
	if v := hdr[4]; v != envelopeVersion {
		if v > envelopeVersion {
			return 0, fmt.Errorf("decode object %s: envelope version %d is newer than this rewind reads (%d); upgrade rewind: %w",
				key, v, envelopeVersion, ErrUnsupportedVersion)
		}
		return 0, corrupt(key, "bad envelope version %d", v)
	}
	flags := hdr[5]
	if flags&^knownFlags != 0 || hdr[7] != 0 {
		return 0, corrupt(key, "unknown header flags %#x/%#x", flags, hdr[7])
	}
	if got := Kind(hdr[6]); got != kind {
		return 0, corrupt(key, "object is a %s, want a %s", got, kind)
	}
	if flags&flagAge != 0 && !kind.isData() {
		return 0, corrupt(key, "metadata object marked encrypted")
	}
	return flags, nil
}

func (c *codec) decrypt(key string, src io.Reader) (io.Reader, error) {
	if len(c.identities) == 0 {
		return nil, fmt.Errorf("decrypt object %s: the object is encrypted; pass --identity FILE or set REWIND_IDENTITY: %w",
			key, ErrNeedIdentity)
	}
	r, err := age.Decrypt(src, c.identities...)
	if err != nil {
		var nomatch *age.NoIdentityMatchError
		if errors.As(err, &nomatch) {
			return nil, fmt.Errorf("decrypt object %s: the identity does not match the repository's recipient: %w",
				key, ErrWrongKey)
		}
		return nil, corrupt(key, "decrypt: %v", err)
	}
	return r, nil
}

// readPayload reads exactly n plaintext bytes from body and checks that
// nothing follows. The first MiB is read into a small buffer; only once
// that much real data has arrived is the rest allocated at the (bounded)
// size the header promises, so a corrupt length field alone cannot make it
// allocate, and a genuine object is copied at most once more.
func readPayload(body io.Reader, n uint64, compressed bool) ([]byte, error) {
	src := body
	if compressed {
		d, err := getDecoder()
		if err != nil {
			return nil, err
		}
		defer func() { _ = d.Reset(nil); decoderPool.Put(d) }()
		if err := d.Reset(body); err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		src = d
	}
	buf := make([]byte, 0, min(n+1, 1<<20))
	for {
		if len(buf) == cap(buf) {
			if uint64(len(buf)) > n {
				return nil, fmt.Errorf("payload is longer than the %d bytes the header says", n)
			}
			buf = append(make([]byte, 0, n+1), buf...)
		}
		m, err := src.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+m]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read payload: %w", err)
		}
	}
	if uint64(len(buf)) != n {
		return nil, fmt.Errorf("payload is %d bytes, header says %d", len(buf), n)
	}
	return buf, nil
}

func corrupt(key, format string, args ...any) error {
	return fmt.Errorf("decode object %s: %w: %s", key, ErrCorrupt, fmt.Sprintf(format, args...))
}
