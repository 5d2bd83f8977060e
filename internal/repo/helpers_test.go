package repo

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"testing"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
)

// randomDoc returns a BSON document of about size bytes with varied types,
// like a user document: strings, numbers, nested documents, arrays, binary.
func randomDoc(rng *rand.Rand, size int) bson.Raw {
	d := bson.D{{Key: "_id", Value: bson.NewObjectID()}}
	for n := 0; n < size; {
		key := fmt.Sprintf("f%d", len(d))
		switch rng.IntN(6) {
		case 0:
			s := randomText(rng, rng.IntN(64)+1)
			d = append(d, bson.E{Key: key, Value: s})
			n += len(s) + 8
		case 1:
			d = append(d, bson.E{Key: key, Value: rng.Int64()})
			n += 12
		case 2:
			d = append(d, bson.E{Key: key, Value: rng.Float64()})
			n += 12
		case 3:
			d = append(d, bson.E{Key: key, Value: bson.D{{Key: "a", Value: rng.Int32()}, {Key: "b", Value: randomText(rng, 16)}}})
			n += 40
		case 4:
			d = append(d, bson.E{Key: key, Value: bson.A{rng.Int32(), randomText(rng, 8), true}})
			n += 36
		default:
			b := make([]byte, rng.IntN(48))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			d = append(d, bson.E{Key: key, Value: b})
			n += len(b) + 10
		}
	}
	raw, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return raw
}

// randomText is compressible like real data: words from a small alphabet.
func randomText(rng *rand.Rand, n int) string {
	const letters = "etaoinshrdlucmfwyp     "
	b := make([]byte, n)
	for i := range b {
		b[i] = letters[rng.IntN(len(letters))]
	}
	return string(b)
}

// oplogEntry returns an insert entry at ts wrapping doc.
func oplogEntry(ts optime.Timestamp, doc bson.Raw) bson.Raw {
	raw, err := bson.Marshal(bson.D{
		{Key: "ts", Value: bson.Timestamp{T: ts.T, I: ts.I}},
		{Key: "t", Value: int64(1)},
		{Key: "op", Value: "i"},
		{Key: "ns", Value: "secretdb.secretcoll"},
		{Key: "o", Value: doc},
	})
	if err != nil {
		panic(err)
	}
	return raw
}

// entries returns n oplog entries at T=start, I=1..n.
func entries(rng *rand.Rand, startT uint32, n, docSize int) []bson.Raw {
	out := make([]bson.Raw, n)
	for i := range out {
		out[i] = oplogEntry(optime.Timestamp{T: startT + uint32(i/3), I: uint32(i%3 + 1)}, randomDoc(rng, docSize))
	}
	return out
}

func newIdentity(t testing.TB) *age.X25519Identity {
	t.Helper()
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// newRepo initializes a repository in a memStore and opens it with id (if
// not nil) as the reader's identity.
func newRepo(t testing.TB, id *age.X25519Identity, compression string) (*Repository, *memStore) {
	t.Helper()
	ctx := context.Background()
	st := newMemStore()
	o := InitOptions{Location: "mem://test", Compression: compression, Source: Source{Flavor: "mongodb", ReplicaSet: "rs0"}}
	if id != nil {
		o.Recipient = id.Recipient().String()
	}
	if _, err := Init(ctx, st, o); err != nil {
		t.Fatalf("Init: %v", err)
	}
	oo := OpenOptions{Location: "mem://test"}
	if id != nil {
		oo.Identities = []age.Identity{id}
	}
	r, err := Open(ctx, st, oo)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return r, st
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }

func tsOf(t, i uint32) optime.Timestamp { return optime.Timestamp{T: t, I: i} }

// rngFor returns a deterministic generator seeded from the test name.
func rngFor(t testing.TB) *rand.Rand {
	var seed uint64
	for _, c := range t.Name() {
		seed = seed*31 + uint64(c)
	}
	return rand.New(rand.NewPCG(seed, 7))
}
