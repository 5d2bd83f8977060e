package repo

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"
)

type codecCase struct {
	name string
	c    *codec
}

func codecCases(t testing.TB) []codecCase {
	id := newIdentity(t)
	rcp := []age.Recipient{id.Recipient()}
	ids := []age.Identity{id}
	return []codecCase{
		{"plain", &codec{}},
		{"zstd", &codec{compress: true}},
		{"age", &codec{recipients: rcp, identities: ids}},
		{"zstd+age", &codec{compress: true, recipients: rcp, identities: ids}},
	}
}

// TestEnvelopeRoundTrip encodes random payloads of random BSON documents,
// from empty to several MiB, in every mode and checks they come back
// byte for byte with the right checksum.
func TestEnvelopeRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := []int{0, 1, 100, 4 << 10, 64<<10 - 1, 64 << 10, 64<<10 + 1, 300 << 10, 3 << 20, 6<<20 + 17}
	for i := 0; i < 10; i++ {
		sizes = append(sizes, rng.IntN(200<<10))
	}
	for _, cc := range codecCases(t) {
		for _, size := range sizes {
			var docs []bson.Raw
			n := 0
			for n < size {
				d := randomDoc(rng, min(rng.IntN(2048)+16, size-n))
				docs = append(docs, d)
				n += len(d)
			}
			payload, _ := joinDocs(docs)
			if size == 1 { // not BSON: the envelope takes any bytes
				payload = []byte{42}
			}
			obj, err := cc.c.encode(KindChunk, payload)
			if err != nil {
				t.Fatalf("%s/%d: encode: %v", cc.name, size, err)
			}
			got, sum, err := cc.c.decode("k", KindChunk, bytes.NewReader(obj))
			if err != nil {
				t.Fatalf("%s/%d: decode: %v", cc.name, size, err)
			}
			if !bytes.Equal(got, payload) {
				t.Fatalf("%s/%d: payload differs after round trip", cc.name, size)
			}
			if want := sha256Sum(payload); sum != want {
				t.Fatalf("%s/%d: checksum %x, want %x", cc.name, size, sum, want)
			}
			if cc.c.recipients != nil && len(payload) > 64 && bytes.Contains(obj, payload[:64]) {
				t.Fatalf("%s/%d: plaintext visible in an encrypted object", cc.name, size)
			}
		}
	}
}

func TestEncryptedObjectHidesNames(t *testing.T) {
	cc := codecCases(t)[3]
	payload := []byte(strings.Repeat("secretdb.secretcoll customer-name ", 100))
	obj, err := cc.c.encode(KindManifest, payload)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"secretdb", "secretcoll", "customer"} {
		if bytes.Contains(obj, []byte(s)) {
			t.Fatalf("encrypted object contains %q in plaintext", s)
		}
	}
	if sum := sha256Sum(payload); bytes.Contains(obj, sum[:8]) {
		t.Fatal("encrypted object exposes the plaintext checksum")
	}
}

// TestEnvelopeCorruption flips every byte and cuts at every length of a
// small object in each mode: every change must be an error naming the key.
func TestEnvelopeCorruption(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	payload := []byte(randomDoc(rng, 300))
	for _, cc := range codecCases(t) {
		obj, err := cc.c.encode(KindSegment, payload)
		if err != nil {
			t.Fatal(err)
		}
		for i := range obj {
			bad := append([]byte(nil), obj...)
			bad[i] ^= byte(1 << (i % 8))
			checkBad(t, cc, bad, "flip byte %d", i)
			bad[i] = obj[i] ^ 0xff
			checkBad(t, cc, bad, "invert byte %d", i)
		}
		for n := 0; n < len(obj); n++ {
			checkBad(t, cc, obj[:n], "truncate to %d", n)
		}
		checkBad(t, cc, append(append([]byte(nil), obj...), 0), "trailing zero")
		checkBad(t, cc, append(append([]byte(nil), obj...), obj...), "doubled")
	}
}

func checkBad(t *testing.T, cc codecCase, obj []byte, format string, args ...any) {
	t.Helper()
	_, _, err := cc.c.decode("oplog/rs0/KEY", KindSegment, bytes.NewReader(obj))
	if err == nil {
		t.Fatalf("%s: "+format+": corrupt object decoded without error", append([]any{cc.name}, args...)...)
	}
	if !strings.Contains(err.Error(), "oplog/rs0/KEY") {
		t.Fatalf("%s: "+format+": error does not name the key: %v", append(append([]any{cc.name}, args...), err)...)
	}
	if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("%s: "+format+": want ErrCorrupt, got %v", append(append([]any{cc.name}, args...), err)...)
	}
}

func TestEnvelopeWrongKind(t *testing.T) {
	c := &codec{compress: true}
	obj, _ := c.encode(KindSegment, []byte("x"))
	_, _, err := c.decode("k", KindChunk, bytes.NewReader(obj))
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decode segment as chunk: %v, want ErrCorrupt", err)
	}
}

func TestEnvelopeNewerVersion(t *testing.T) {
	c := &codec{}
	obj, _ := c.encode(KindSegment, []byte("x"))
	obj[4] = envelopeVersion + 1
	_, _, err := c.decode("k", KindSegment, bytes.NewReader(obj))
	if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "upgrade rewind") {
		t.Fatalf("newer envelope: %v", err)
	}
}

func TestEnvelopeWrongKeyAndNoKey(t *testing.T) {
	id, other := newIdentity(t), newIdentity(t)
	w := &codec{recipients: []age.Recipient{id.Recipient()}}
	obj, err := w.encode(KindSegment, []byte("entries"))
	if err != nil {
		t.Fatal(err)
	}
	wrong := &codec{recipients: w.recipients, identities: []age.Identity{other}}
	if _, _, err := wrong.decode("seg", KindSegment, bytes.NewReader(obj)); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong identity: %v, want ErrWrongKey", err)
	}
	if _, _, err := w.decode("seg", KindSegment, bytes.NewReader(obj)); !errors.Is(err, ErrNeedIdentity) {
		t.Fatalf("no identity: %v, want ErrNeedIdentity", err)
	}
	// A plaintext data object slipped into an encrypted repository.
	plain, _ := (&codec{}).encode(KindSegment, []byte("entries"))
	right := &codec{recipients: w.recipients, identities: []age.Identity{id}}
	if _, _, err := right.decode("seg", KindSegment, bytes.NewReader(plain)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("plaintext object in encrypted repository: %v, want ErrCorrupt", err)
	}
}

func TestEnvelopeLengthBounded(t *testing.T) {
	c := &codec{}
	obj, _ := c.encode(KindSegment, []byte("x"))
	// Claim 1 TiB of plaintext: refused before any allocation.
	copy(obj[headerSize:], []byte{0, 0, 1, 0, 0, 0, 0, 0})
	_, _, err := c.decode("k", KindSegment, bytes.NewReader(obj))
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("huge length: %v", err)
	}
}

// TestEnvelopeGolden pins the on-disk format: the checked-in objects must
// decode to the checked-in payload, and encoding the uncompressed one must
// reproduce it byte for byte. Regenerate only on a deliberate format change
// (REWIND_UPDATE_GOLDEN=1), together with docs/FORMAT.md and FormatVersion.
func TestEnvelopeGolden(t *testing.T) {
	idBytes, err := os.ReadFile(filepath.Join("testdata", "golden-identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(idBytes))
	if err != nil {
		t.Fatal(err)
	}
	id := ids[0].(*age.X25519Identity)
	payload := goldenPayload()
	cases := map[string]*codec{
		"golden-plain.bin":    {},
		"golden-zstd.bin":     {compress: true},
		"golden-zstd-age.bin": {compress: true, recipients: []age.Recipient{id.Recipient()}, identities: ids},
	}
	for name, c := range cases {
		path := filepath.Join("testdata", name)
		if os.Getenv("REWIND_UPDATE_GOLDEN") == "1" {
			obj, err := c.encode(KindSegment, payload)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, obj, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		obj, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := c.decode(name, KindSegment, bytes.NewReader(obj))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("%s: decoded payload differs from the golden payload", name)
		}
		if name == "golden-plain.bin" {
			again, _ := c.encode(KindSegment, payload)
			if !bytes.Equal(again, obj) {
				t.Fatalf("%s: encoding changed: the on-disk format is not what the golden file pins", name)
			}
		}
		if !bytes.Equal(obj[:4], []byte("RWND")) || obj[4] != 1 {
			t.Fatalf("%s: header %x", name, obj[:8])
		}
	}
}

func goldenPayload() []byte {
	var out []byte
	for i := uint32(1); i <= 3; i++ {
		doc, _ := bson.Marshal(bson.D{{Key: "_id", Value: int32(i)}, {Key: "name", Value: "golden"}})
		out = append(out, oplogEntry(tsOf(100, i), doc)...)
	}
	return out
}
