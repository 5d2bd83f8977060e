package repo

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestParseCompression(t *testing.T) {
	for _, c := range []struct{ in, comp, level string }{
		{"none", CompressionNone, ""},
		{"zstd", CompressionZstd, DefaultLevel},
		{"fastest", CompressionZstd, LevelFastest},
		{"default", CompressionZstd, LevelDefault},
		{"better", CompressionZstd, LevelBetter},
	} {
		comp, level, err := ParseCompression(c.in)
		if err != nil || comp != c.comp || level != c.level {
			t.Errorf("ParseCompression(%q) = %q %q %v, want %q %q", c.in, comp, level, err, c.comp, c.level)
		}
	}
	for _, bad := range []string{"", "lz4", "Fastest", "best"} {
		if _, _, err := ParseCompression(bad); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "fastest, default, better") {
			t.Errorf("ParseCompression(%q) = %v, want ErrInvalid naming the levels", bad, err)
		}
	}
}

// levelDocs is compressible BSON whose size differs between zstd levels.
func levelDocs() []bson.Raw {
	rng := rand.New(rand.NewPCG(3, 4))
	var docs []bson.Raw
	for i := range 3000 {
		words := make([]string, 30)
		for j := range words {
			words[j] = []string{"order", "customer", "shipped", "paid", "returned", "note"}[rng.IntN(6)]
		}
		d, _ := bson.Marshal(bson.D{{Key: "_id", Value: i}, {Key: "n", Value: rng.Int64()}, {Key: "s", Value: strings.Join(words, " ")}})
		docs = append(docs, d)
	}
	return docs
}

// Init records the level it is given (DefaultLevel when none), and every
// data object the repository writes afterwards is compressed at it: the
// stored chunk is, byte for byte, what an encoder at that level makes.
func TestLevelIsRecordedAndUsed(t *testing.T) {
	ctx := context.Background()
	docs := levelDocs()
	payload, _ := joinDocs(docs)
	stored := map[string][]byte{}
	for _, level := range append([]string{""}, Levels...) {
		st := newMemStore()
		if _, err := Init(ctx, st, InitOptions{Level: level}); err != nil {
			t.Fatal(err)
		}
		want := level
		if level == "" {
			want = DefaultLevel
		}
		if got := readConfig(t, st).Level; got != want {
			t.Fatalf("init with level %q recorded %q, want %q", level, got, want)
		}
		r, err := Open(ctx, st, OpenOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ref, err := r.WriteChunk(ctx, "rs0", "s1", "c1", 0, docs)
		if err != nil {
			t.Fatal(err)
		}
		zl, _ := zstdLevel(want)
		expect, _ := (&codec{compress: true, level: zl}).encode(KindChunk, payload)
		if got := st.raw(ref.Key); !bytes.Equal(got, expect) {
			t.Fatalf("level %s: stored chunk (%d bytes) is not the %d bytes zstd makes at that level", want, len(got), len(expect))
		}
		back, err := r.ReadChunk(ctx, ref)
		if err != nil || len(back) != len(docs) {
			t.Fatalf("level %s: read back %d documents: %v", want, len(back), err)
		}
		stored[want] = st.raw(ref.Key)
	}
	if bytes.Equal(stored[LevelFastest], stored[LevelBetter]) {
		t.Fatal("fastest and better stored the same bytes: the level is not used")
	}
}

// A repository made before levels were recorded has none in its config: it
// opens, is written at LevelDefault (what it was written with before), and
// reads back. A level this build does not know asks for an upgrade.
func TestConfigWithoutLevel(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	if _, err := Init(ctx, st, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t, st)
	cfg.Level = ""
	writeConfig(t, st, cfg)
	raw := st.raw(configKey)
	if bytes.Contains(raw, []byte("level")) {
		t.Fatal("the old-style config still names a level")
	}
	r, err := Open(ctx, st, OpenOptions{})
	if err != nil {
		t.Fatalf("open a config without a level: %v", err)
	}
	docs := levelDocs()
	ref, err := r.WriteChunk(ctx, "rs0", "s1", "c1", 0, docs)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := joinDocs(docs)
	expect, _ := (&codec{compress: true, level: 2}).encode(KindChunk, payload) // zstd.SpeedDefault
	if !bytes.Equal(st.raw(ref.Key), expect) {
		t.Fatal("a repository without a level is not written at the default level")
	}
	if back, err := r.ReadChunk(ctx, ref); err != nil || len(back) != len(docs) {
		t.Fatalf("read back: %d documents, %v", len(back), err)
	}
	cfg.Level = "best"
	writeConfig(t, st, cfg)
	if _, err := Open(ctx, st, OpenOptions{}); !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "upgrade rewind") {
		t.Fatalf("open with an unknown level: %v", err)
	}
	cfg.Compression, cfg.Level = CompressionNone, LevelBetter
	if err := cfg.validate(); !errors.Is(err, ErrInvalid) {
		t.Fatalf("a level without compression: %v", err)
	}
	if _, err := Init(ctx, newMemStore(), InitOptions{Level: "lz4"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("init with a bad level: %v", err)
	}
}

// Chunks written from packed data (the snapshot's path) hold what
// WriteChunk of the same documents holds, and bad framing is refused.
func TestWriteChunkData(t *testing.T) {
	ctx := context.Background()
	r, err := Init(ctx, newMemStore(), InitOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := levelDocs()
	payload, _ := joinDocs(docs)
	a, err := r.WriteChunk(ctx, "rs0", "s1", "c1", 0, docs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.WriteChunkData(ctx, "rs0", "s1", "c1", 1, payload)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.SHA256, b.SHA256) || a.Count != b.Count || a.Bytes != b.Bytes || b.Count != int64(len(docs)) {
		t.Fatalf("refs differ: %+v %+v", a, b)
	}
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": payload[:len(payload)-1],
		"stray":     append(append([]byte{}, payload...), 1, 2),
		"no nul":    {5, 0, 0, 0, 1},
	} {
		if _, err := r.WriteChunkData(ctx, "rs0", "s1", "c1", 2, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
}

// entryFields reads what three Lookups would, whatever the field order,
// types or duplicates.
func TestEntryFields(t *testing.T) {
	o := bson.D{{Key: "_id", Value: 1}}
	for _, d := range []bson.D{
		{{Key: "ts", Value: bson.Timestamp{T: 1}}, {Key: "op", Value: "i"}, {Key: "ns", Value: "d.c"}, {Key: "o", Value: o}},
		{{Key: "o", Value: o}, {Key: "ns", Value: "d.c"}, {Key: "op", Value: "u"}},
		{{Key: "op", Value: 3}, {Key: "ns", Value: "d.c"}, {Key: "o", Value: "not a document"}},
		{{Key: "op", Value: "d"}, {Key: "op", Value: "i"}, {Key: "o", Value: o}, {Key: "o", Value: bson.D{}}},
		{{Key: "opx", Value: "i"}, {Key: "nss", Value: "x"}},
		{},
	} {
		raw, _ := bson.Marshal(d)
		doc := bson.Raw(raw)
		wantOp, _ := doc.Lookup("op").StringValueOK()
		wantNS, _ := doc.Lookup("ns").StringValueOK()
		wantO, _ := doc.Lookup("o").DocumentOK()
		op, ns, gotO := entryFields(doc)
		if op != wantOp || ns != wantNS || !bytes.Equal(gotO, wantO) {
			t.Errorf("%v: entryFields = %q %q %v, Lookup gives %q %q %v", d, op, ns, gotO, wantOp, wantNS, wantO)
		}
	}
}

// A pooled buffer is always large enough for what it was asked for, and a
// buffer given back serves the next request of its size class.
func TestBufPool(t *testing.T) {
	for _, n := range []int{0, 1, 1000, 64 << 10, 64<<10 + 1, 3 << 20, 8 << 20, 64 << 20, 64<<20 + 1} {
		b := getBuf(n)
		if len(b) != 0 || cap(b) < n {
			t.Fatalf("getBuf(%d): len %d cap %d", n, len(b), cap(b))
		}
		putBuf(append(b, 1))
	}
	small := getBuf(3 << 20) // class 2^22
	putBuf(small)
	if big := getBuf(5 << 20); cap(big) < 5<<20 {
		t.Fatalf("a 5 MiB request got a buffer of %d bytes", cap(big))
	}
}
