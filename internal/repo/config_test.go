package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"
)

func TestInitOpen(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	_, err := Open(ctx, st, OpenOptions{Location: "file:///backups"})
	if !errors.Is(err, ErrNoRepository) || !strings.Contains(err.Error(), "rewind init --repo file:///backups") {
		t.Fatalf("open empty store: %v", err)
	}
	src := Source{Flavor: "ferretdb", Hosts: []string{"db1:27017"}, CreatedBy: "test"}
	r, err := Init(ctx, st, InitOptions{Location: "file:///backups", Source: src})
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.Config()
	if cfg.Version != FormatVersion || cfg.Compression != CompressionZstd || cfg.Encrypted() ||
		len(cfg.ID) != 36 || cfg.Source.Flavor != "ferretdb" || cfg.Created.IsZero() {
		t.Fatalf("config %+v", cfg)
	}
	if _, err := Init(ctx, st, InitOptions{Location: "file:///backups"}); !errors.Is(err, ErrAlreadyInitialized) {
		t.Fatalf("second init: %v", err)
	}
	r2, err := Open(ctx, st, OpenOptions{})
	if err != nil || r2.Config().ID != cfg.ID {
		t.Fatalf("reopen: %v %+v", err, r2.Config())
	}
}

func TestOpenNewerVersion(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	if _, err := Init(ctx, st, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t, st)
	cfg.Version = FormatVersion + 1
	writeConfig(t, st, cfg)
	_, err := Open(ctx, st, OpenOptions{Location: "s3://b"})
	if !errors.Is(err, ErrUnsupportedVersion) || !strings.Contains(err.Error(), "version 2") ||
		!strings.Contains(err.Error(), "(up to 1)") {
		t.Fatalf("newer version: %v", err)
	}
}

func TestOpenCorruptConfig(t *testing.T) {
	ctx := context.Background()
	st := newMemStore()
	if _, err := Init(ctx, st, InitOptions{}); err != nil {
		t.Fatal(err)
	}
	b := st.raw(configKey)
	b[len(b)-3] ^= 1
	st.set(configKey, b)
	if _, err := Open(ctx, st, OpenOptions{}); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "config") {
		t.Fatalf("corrupt config: %v", err)
	}
}

func TestEncryptedRepository(t *testing.T) {
	ctx := context.Background()
	id, other := newIdentity(t), newIdentity(t)
	st := newMemStore()
	w, err := Init(ctx, st, InitOptions{Recipient: id.Recipient().String()})
	if err != nil {
		t.Fatal(err)
	}
	// The writer opened without any identity can write: the recipient is
	// in the config.
	seg, err := w.WriteSegment(ctx, "rs0", "tl1", entries(rngFor(t), 100, 5, 200))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.ReadSegment(ctx, seg); !errors.Is(err, ErrNeedIdentity) {
		t.Fatalf("read without identity: %v", err)
	}
	if _, err := Open(ctx, st, OpenOptions{Identities: []age.Identity{other}}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open with wrong identity: %v", err)
	}
	if _, err := Open(ctx, st, OpenOptions{Recipient: other.Recipient().String()}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("open with a pinned recipient that differs: %v", err)
	}
	r, err := Open(ctx, st, OpenOptions{Identities: []age.Identity{id}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := r.ReadSegment(ctx, seg)
	if err != nil || len(got) != 5 {
		t.Fatalf("read with identity: %d entries, %v", len(got), err)
	}
	if bytes.Contains(st.raw(seg.Key), []byte("secretdb")) {
		t.Fatal("namespace stored in plaintext in an encrypted repository")
	}
}

func TestInitRejectsBadOptions(t *testing.T) {
	ctx := context.Background()
	for _, o := range []InitOptions{{Compression: "lz4"}, {Recipient: "AGE-SECRET-KEY-1XYZ"}, {Recipient: "age1nope"}} {
		if _, err := Init(ctx, newMemStore(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Init(%+v): %v, want ErrInvalid", o, err)
		}
	}
}

func TestIdentityLoading(t *testing.T) {
	id := newIdentity(t)
	path := filepath.Join(t.TempDir(), "key.txt")
	if err := os.WriteFile(path, []byte("# created: now\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, load := range map[string]func() ([]age.Identity, error){
		"file":       func() ([]age.Identity, error) { return LoadIdentities(path) },
		"path":       func() ([]age.Identity, error) { return ParseIdentity(path) },
		"key itself": func() ([]age.Identity, error) { return ParseIdentity(id.String() + "\n") },
	} {
		ids, err := load()
		if err != nil || len(ids) != 1 || ids[0].(*age.X25519Identity).String() != id.String() {
			t.Errorf("%s: %v", name, err)
		}
	}
	missing := filepath.Join(t.TempDir(), "missing")
	if _, err := ParseIdentity(missing); err == nil || !strings.Contains(err.Error(), missing) || !strings.Contains(err.Error(), "age-keygen") {
		t.Errorf("missing identity file: %v; want an error naming it and saying what it must be", err)
	}
	if _, err := ParseIdentity("AGE-SECRET-KEY-1NOTAKEY"); err == nil || strings.Contains(err.Error(), "NOTAKEY") {
		t.Errorf("bad key: %v; want an error without the key", err)
	}
	if ids, err := ParseIdentity(""); ids != nil || err != nil {
		t.Errorf("no identity: %v %v", ids, err)
	}
}

func readConfig(t *testing.T, st *memStore) Config {
	t.Helper()
	payload, _, err := (&codec{}).decode(configKey, KindConfig, bytes.NewReader(st.raw(configKey)))
	if err != nil {
		t.Fatal(err)
	}
	var cfg Config
	if err := bson.Unmarshal(payload, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func writeConfig(t *testing.T, st *memStore, cfg Config) {
	t.Helper()
	payload, _ := bson.Marshal(cfg)
	obj, _ := (&codec{}).encode(KindConfig, payload)
	st.set(configKey, obj)
}
