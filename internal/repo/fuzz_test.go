package repo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Fuzz targets for every decoder of bytes read from a repository. Seeds are
// in f.Add calls and checked in under testdata/fuzz/<FuzzName>/ (rewrite
// them with REWIND_UPDATE_FUZZ_SEEDS=1 go test -run TestWriteFuzzSeeds).
// Run one with: go test ./internal/repo -run '^$' -fuzz '^FuzzDecodeEnvelope$' -fuzztime 60s

func goldenCodecs(t testing.TB) (plain, enc *codec) {
	b, err := os.ReadFile(filepath.Join("testdata", "golden-identity.txt"))
	if err != nil {
		t.Fatal(err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	rcp := []age.Recipient{ids[0].(*age.X25519Identity).Recipient()}
	return &codec{compress: true}, &codec{compress: true, recipients: rcp, identities: ids}
}

func envelopeSeeds(t testing.TB) [][]byte {
	plain, enc := goldenCodecs(t)
	var seeds [][]byte
	for _, c := range []*codec{plain, enc, {}} {
		for _, p := range [][]byte{nil, goldenPayload()} {
			obj, err := c.encode(KindSegment, p)
			if err != nil {
				t.Fatal(err)
			}
			seeds = append(seeds, obj)
		}
	}
	lock, _ := plain.encode(KindLock, seedLock())
	return append(seeds, lock, []byte("RWND"), nil)
}

func FuzzDecodeEnvelope(f *testing.F) {
	for _, s := range envelopeSeeds(f) {
		f.Add(s)
	}
	plain, enc := goldenCodecs(f)
	f.Fuzz(func(t *testing.T, obj []byte) {
		kind := KindSegment
		if len(obj) > 6 {
			kind = Kind(obj[6])
		}
		for _, c := range []*codec{plain, enc} {
			got, sum, err := c.decode("fuzz/key", kind, bytes.NewReader(obj))
			if err != nil {
				checkDecodeError(t, err)
				continue
			}
			if sha256Sum(got) != sum {
				t.Fatal("decoded payload does not match its checksum")
			}
		}
	})
}

func checkDecodeError(t *testing.T, err error) {
	t.Helper()
	known := errors.Is(err, ErrCorrupt) || errors.Is(err, ErrUnsupportedVersion) ||
		errors.Is(err, ErrWrongKey) || errors.Is(err, ErrNeedIdentity)
	if !known || !strings.Contains(err.Error(), "fuzz/key") {
		t.Fatalf("untyped error or key not named: %v", err)
	}
}

func FuzzDecodeSegment(f *testing.F) {
	f.Add(goldenPayload())
	f.Add([]byte{})
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Add(append(goldenPayload(), 1, 2, 3))
	f.Fuzz(func(t *testing.T, payload []byte) {
		es, first, last, err := decodeSegment(payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		joined, err := joinDocs(es)
		if err != nil || !bytes.Equal(joined, payload) || last.Before(first) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func seedManifest() []byte {
	idx, _ := bson.Marshal(bson.D{{Key: "key", Value: bson.D{{Key: "_id", Value: 1}}}, {Key: "name", Value: "_id_"}})
	m := Manifest{ID: "20261125T100000Z-0a0b0c0d", Shard: "rs0", Start: tsOf(1, 1), End: tsOf(2, 1),
		Started: time.Unix(1, 0).UTC(), Collections: []CollectionManifest{{DB: "db", Name: "c", UUID: "u1",
			Indexes: []bson.Raw{idx}, Count: 2, Bytes: 10, Chunks: []ChunkRef{{
				Key: chunkKey("rs0", "20261125T100000Z-0a0b0c0d", "u1", 0), SHA256: make([]byte, 32), Count: 2, Bytes: 10}}}},
		Views: []ViewManifest{{DB: "db", Name: "v", Options: idx}}, Users: []bson.Raw{idx}}
	b, err := bson.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzDecodeManifest(f *testing.F) {
	f.Add(seedManifest())
	f.Add([]byte{5, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, payload []byte) {
		m, err := decodeManifest(payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		again, err := bson.Marshal(m)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if _, err := decodeManifest(again); err != nil {
			t.Fatalf("re-decode: %v", err)
		}
	})
}

func seedConfig(encrypted bool) []byte {
	cfg := Config{Version: 1, ID: "4b0c3c6e-0000-4000-8000-000000000000", Created: time.Unix(1, 0).UTC(),
		Compression: CompressionZstd, Source: Source{Flavor: "mongodb", ReplicaSet: "rs0"}}
	if encrypted {
		cfg.Recipient = "age1jka9hn2sj3k3jfrpnkqnwf3z90djpmlyuugcv9dv7vxr8mvdygaqgvexlh"
		cfg.KeyCheck = []byte("age-encryption.org/v1\n")
	}
	b, _ := bson.Marshal(cfg)
	return b
}

func FuzzDecodeConfig(f *testing.F) {
	f.Add(seedConfig(false))
	f.Add(seedConfig(true))
	f.Fuzz(func(t *testing.T, payload []byte) {
		cfg, err := decodeConfig(payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if cfg.Version < 1 || cfg.Version > FormatVersion || cfg.ID == "" {
			t.Fatalf("accepted config %+v", cfg)
		}
	})
}

func seedLock() []byte {
	b, _ := bson.Marshal(LockInfo{ID: "0123456789abcdef", Kind: LockExclusive, Purpose: "agent", Host: "h", PID: 1,
		Started: time.Unix(1, 0).UTC(), Refreshed: time.Unix(2, 0).UTC()})
	return b
}

func FuzzDecodeLock(f *testing.F) {
	f.Add(seedLock())
	f.Fuzz(func(t *testing.T, payload []byte) {
		info, err := decodeLock(payload)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !validID(info.ID, "") || lockKey(info.ID) == prefixLocks {
			t.Fatalf("accepted lock %+v", info)
		}
	})
}

// FuzzDecodeMetadata covers the BSON records read through getBSON
// (timeline, gap, heartbeat, audit entry).
func FuzzDecodeMetadata(f *testing.F) {
	for _, v := range []any{TimelineInfo{Shard: "rs0", ID: "t1", Flavor: "ferretdb"},
		Gap{Shard: "rs0", Before: tsOf(1, 1), After: tsOf(2, 1)}, Heartbeat{Shard: "rs0", Lag: time.Second},
		AuditEntry{ID: "20261130T010203.004Z-1a2b3c4d", Action: AuditRestore, Actor: Actor{Via: "api", Token: "sha256:00000000"},
			Namespaces: []string{"shop.orders"}, Started: time.Unix(1, 0), Outcome: AuditOK}} {
		b, _ := bson.Marshal(v)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var tl TimelineInfo
		var g Gap
		var hb Heartbeat
		var ae AuditEntry
		_ = bson.Unmarshal(payload, &tl)
		_ = bson.Unmarshal(payload, &g)
		_ = bson.Unmarshal(payload, &hb)
		_ = bson.Unmarshal(payload, &ae)
	})
}

func FuzzParseSegmentKey(f *testing.F) {
	f.Add(segmentKey("rs0", "tl1", tsOf(1, 2), tsOf(3, 4), tsOf(1, 1)))
	f.Add("oplog/rs0/0000000001.0000000002_0000000001.0000000001_x")
	f.Fuzz(func(t *testing.T, key string) {
		s, err := parseSegmentKey(key)
		if err != nil {
			return
		}
		if segmentKey(s.Shard, s.Timeline, s.First, s.Last, s.Prev) != key || s.Last.Before(s.First) {
			t.Fatalf("key %q parsed as %+v", key, s)
		}
	})
}

// TestWriteFuzzSeeds writes the checked-in seed corpus.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("REWIND_UPDATE_FUZZ_SEEDS") != "1" {
		t.Skip("set REWIND_UPDATE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(name string, i int, v any) {
		dir := filepath.Join("testdata", "fuzz", name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		typ := "[]byte"
		if _, ok := v.(string); ok {
			typ = "string"
		}
		body := fmt.Sprintf("go test fuzz v1\n%s(%q)\n", typ, v)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed-%02d", i)), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range envelopeSeeds(t) {
		write("FuzzDecodeEnvelope", i, s)
	}
	write("FuzzDecodeSegment", 0, goldenPayload())
	write("FuzzDecodeManifest", 0, seedManifest())
	write("FuzzDecodeConfig", 0, seedConfig(false))
	write("FuzzDecodeConfig", 1, seedConfig(true))
	write("FuzzDecodeLock", 0, seedLock())
	write("FuzzParseSegmentKey", 0, segmentKey("rs0", "tl1", tsOf(1, 2), tsOf(3, 4), tsOf(1, 1)))
	for i, v := range []any{TimelineInfo{Shard: "rs0", ID: "t1"}, Gap{Shard: "rs0"}, Heartbeat{Shard: "rs0"}} {
		b, _ := bson.Marshal(v)
		write("FuzzDecodeMetadata", i, b)
	}
}
