package repo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"filippo.io/age"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/storage"
)

// FormatVersion is the repository format this build writes and the newest
// it reads. Bump it only for changes an older build would misread.
const FormatVersion = 1

// Compression values for InitOptions and Config.
const (
	CompressionZstd = "zstd"
	CompressionNone = "none"
)

// Source identifies what a repository backs up.
type Source struct {
	Flavor     string `bson:"flavor"` // "mongodb" or "ferretdb"
	ReplicaSet string `bson:"replicaSet,omitempty"`
	// ReplicaSetID is the replica set's own id (replSetGetConfig's
	// settings.replicaSetId, hex), when the user may read it: two sets
	// may share a name, never an id.
	ReplicaSetID string   `bson:"replicaSetId,omitempty"`
	Hosts        []string `bson:"hosts,omitempty"`
	CreatedBy    string   `bson:"createdBy,omitempty"` // e.g. "rewind 0.1.0 on host db1"
	// Cluster is set when the repository backs up a sharded cluster: its
	// shards and config server at init. Absent (every repository written
	// before clusters, and every replica set's): a replica set repository.
	Cluster *Cluster `bson:"cluster,omitempty"`
}

// Cluster is a sharded cluster's topology as the repository records it:
// in the config at init, and in a topology object at every change.
type Cluster struct {
	// Shards are the cluster's shards, sorted by name.
	Shards []ClusterShard `bson:"shards"`
	// ConfigServer is the config server replica set's name, "" when
	// unknown (no --config-server, or a test server without one).
	ConfigServer string `bson:"configServer,omitempty"`
}

// ClusterShard is one shard: its name (config.shards' _id, the shard id
// its objects are stored under) and its replica set's name ("" when
// unknown).
type ClusterShard struct {
	Name       string `bson:"name"`
	ReplicaSet string `bson:"replicaSet,omitempty"`
}

// Names lists the shards' names in order.
func (c Cluster) Names() []string {
	out := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		out[i] = s.Name
	}
	return out
}

// Config is the repository's self-description, stored unencrypted under the
// key "config" so that a writer holding only the store URL can find the
// recipient, and a reader can tell whether it needs an identity.
type Config struct {
	Version     int       `bson:"version"`
	ID          string    `bson:"id"` // random UUID
	Created     time.Time `bson:"created"`
	Compression string    `bson:"compression"`
	// Level is the zstd level data objects are written with (LevelFastest,
	// LevelDefault, LevelBetter); empty in repositories made before the
	// setting existed, which are written at LevelDefault. Readers never
	// need it; builds that predate it ignore it.
	Level string `bson:"level,omitempty"`
	// Recipient is the age public key every data object is encrypted to;
	// empty when the repository is not encrypted.
	Recipient string `bson:"recipient,omitempty"`
	// KeyCheck is a small random value encrypted to Recipient: Open decrypts
	// it to tell a wrong identity apart before touching any data.
	KeyCheck []byte `bson:"keyCheck,omitempty"`
	Source   Source `bson:"source"`
	// ObjectLock, when set (rewind init --object-lock), is the S3 Object
	// Lock retention every object but the mutable ones is written with.
	// Builds that predate it ignore it and would write objects unlocked.
	ObjectLock *ObjectLock `bson:"objectLock,omitempty"`
}

// Encrypted reports whether data objects are encrypted.
func (c Config) Encrypted() bool { return c.Recipient != "" }

// InitOptions configure a new repository.
type InitOptions struct {
	Location    string // the repository URL, for messages
	Compression string // CompressionZstd (default) or CompressionNone
	Level       string // zstd level (LevelFastest...); empty: DefaultLevel. ParseCompression gives both from a --compression value
	Recipient   string // age public key; empty: no encryption
	Source      Source
	// ObjectLock, if set, locks every object written (see ObjectLock); the
	// store must be an S3 bucket with Object Lock enabled.
	ObjectLock *ObjectLock
	Now        func() time.Time // default time.Now
}

// OpenOptions configure access to an existing repository.
type OpenOptions struct {
	Location string // the repository URL, for messages
	// Identities decrypt data objects. Writing needs none: the recipient is
	// in the config.
	Identities []age.Identity
	// Recipient, if set, must equal the config's recipient: it stops a
	// writer from encrypting to a key an attacker put in the config.
	Recipient string
}

// Repository is an opened rewind repository. It is safe for concurrent use.
type Repository struct {
	// store is fenced: it refuses writes once this process's exclusive
	// lock is lost (fence.go).
	store *fencedStore
	// base is the store as given to Open, under the object lock view.
	base     storage.Store
	cfg      Config
	codec    *codec
	location string
}

// Config returns the repository's config.
func (r *Repository) Config() Config { return r.cfg }

// Location is the repository's URL without secrets, as given to Open.
func (r *Repository) Location() string { return r.location }

// Store returns the repository's store, fenced by the process's exclusive
// lock: while one is held, writes outside locks/ are refused once it is
// lost or past its lease (Lock.Check).
func (r *Repository) Store() storage.Store { return r.store }

func where(loc string) string {
	if loc == "" {
		return "this location"
	}
	return loc
}

// Init creates a repository in an empty store and returns it opened for
// writing (without identities).
func Init(ctx context.Context, store storage.Store, o InitOptions) (*Repository, error) {
	cfg, err := newConfig(o)
	if err != nil {
		return nil, err
	}
	if _, err := store.Stat(ctx, configKey); err == nil {
		return nil, fmt.Errorf("init repository: %s already holds a rewind repository; open it instead of running init: %w",
			where(o.Location), ErrAlreadyInitialized)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("init repository: %w", err)
	}
	if cfg.ObjectLock != nil {
		if err := storage.CheckObjectLock(ctx, store); err != nil {
			return nil, fmt.Errorf("init repository with object lock: %w", err)
		}
	}
	payload, err := bson.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("encode config: %w", err)
	}
	c := &codec{}
	obj, err := c.encode(KindConfig, payload)
	if err != nil {
		return nil, err
	}
	if err := lockStore(store, cfg.ObjectLock).Put(ctx, configKey, bytes.NewReader(obj)); err != nil {
		return nil, fmt.Errorf("write config: %w", err)
	}
	r, err := Open(ctx, store, OpenOptions{Location: o.Location, Recipient: o.Recipient})
	if err != nil {
		return nil, err
	}
	if r.cfg.ID != cfg.ID {
		return nil, fmt.Errorf("init repository: another init at %s won the race (repository id %s): %w",
			where(o.Location), r.cfg.ID, ErrAlreadyInitialized)
	}
	return r, nil
}

func newConfig(o InitOptions) (Config, error) {
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	cfg := Config{Version: FormatVersion, ID: newUUID(), Created: now().UTC().Truncate(time.Millisecond),
		Compression: o.Compression, Recipient: o.Recipient, Source: o.Source, ObjectLock: o.ObjectLock}
	if cfg.Compression == "" {
		cfg.Compression = CompressionZstd
	}
	if cfg.Compression == CompressionZstd && o.Level == "" {
		cfg.Level = DefaultLevel
	} else {
		cfg.Level = o.Level
	}
	if o.Recipient == "" {
		return cfg, cfg.validate()
	}
	rcp, err := ParseRecipient(o.Recipient)
	if err != nil {
		return cfg, fmt.Errorf("init repository: %w", err)
	}
	var buf bytes.Buffer
	w, err := age.Encrypt(&buf, rcp)
	if err == nil {
		_, err = w.Write([]byte(randomHex(16)))
	}
	if err == nil {
		err = w.Close()
	}
	if err != nil {
		return cfg, fmt.Errorf("encrypt key check: %w", err)
	}
	cfg.KeyCheck = buf.Bytes()
	return cfg, cfg.validate()
}

func newUUID() string {
	h := randomHex(16)
	b := []byte(h)
	b[12] = '4' // version 4
	b[16] = "89ab"[b[16]%4]
	return string(b[:8]) + "-" + string(b[8:12]) + "-" + string(b[12:16]) + "-" + string(b[16:20]) + "-" + string(b[20:])
}

func (c Config) validate() error {
	switch {
	case c.Version < 1:
		return fmt.Errorf("check config: version %d: %w", c.Version, ErrInvalid)
	case c.ID == "":
		return fmt.Errorf("check config: empty repository id: %w", ErrInvalid)
	case c.Compression != CompressionZstd && c.Compression != CompressionNone:
		return fmt.Errorf("check config: compression %q: want %q or %q: %w",
			c.Compression, CompressionZstd, CompressionNone, ErrInvalid)
	case c.Compression == CompressionNone && c.Level != "":
		return fmt.Errorf("check config: zstd level %q without compression: %w", c.Level, ErrInvalid)
	case c.Recipient != "" && len(c.KeyCheck) == 0:
		return fmt.Errorf("check config: encrypted repository without a key check: %w", ErrInvalid)
	}
	if c.ObjectLock != nil {
		if err := c.ObjectLock.storage().Validate(); err != nil {
			return fmt.Errorf("check config: %v: %w", err, ErrInvalid)
		}
	}
	if _, err := zstdLevel(c.Level); err != nil {
		return fmt.Errorf("check config: %v: %w", err, ErrInvalid)
	}
	if c.Recipient != "" {
		if _, err := ParseRecipient(c.Recipient); err != nil {
			return fmt.Errorf("check config: %w", err)
		}
	}
	return nil
}

// decodeConfig parses a config payload and checks its version.
func decodeConfig(payload []byte) (Config, error) {
	var cfg Config
	if err := bson.Unmarshal(payload, &cfg); err != nil {
		return cfg, fmt.Errorf("%w: config: %v", ErrCorrupt, err)
	}
	if cfg.Version > FormatVersion {
		return cfg, fmt.Errorf("repository format version %d is newer than this rewind reads (up to %d); upgrade rewind: %w",
			cfg.Version, FormatVersion, ErrUnsupportedVersion)
	}
	if _, err := zstdLevel(cfg.Level); err != nil {
		return cfg, fmt.Errorf("repository config names %v, which this rewind does not know; upgrade rewind: %w",
			err, ErrUnsupportedVersion)
	}
	if err := cfg.validate(); err != nil {
		return cfg, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return cfg, nil
}

// Open reads the config of an existing repository.
func Open(ctx context.Context, store storage.Store, o OpenOptions) (*Repository, error) {
	rc, err := storage.Oldest(store).Get(ctx, configKey)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("no rewind repository at %s: run `rewind init --repo %s`: %w",
			where(o.Location), where(o.Location), ErrNoRepository)
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	defer rc.Close()
	payload, _, err := (&codec{}).decode(configKey, KindConfig, rc)
	if err != nil {
		return nil, err
	}
	cfg, err := decodeConfig(payload)
	if err != nil {
		return nil, fmt.Errorf("open repository at %s: %w", where(o.Location), err)
	}
	level, _ := zstdLevel(cfg.Level) // validated above
	c := &codec{compress: cfg.Compression == CompressionZstd, level: level}
	if cfg.Encrypted() {
		if o.Recipient != "" && o.Recipient != cfg.Recipient {
			return nil, fmt.Errorf("open repository at %s: its recipient %s is not the expected %s; check the config was not replaced: %w",
				where(o.Location), cfg.Recipient, o.Recipient, ErrWrongKey)
		}
		rcp, _ := ParseRecipient(cfg.Recipient) // validated above
		c.recipients = []age.Recipient{rcp}
		if len(o.Identities) > 0 {
			if err := checkKey(cfg, o.Identities); err != nil {
				return nil, fmt.Errorf("open repository at %s: %w", where(o.Location), err)
			}
			c.identities = o.Identities
		}
	}
	return &Repository{store: &fencedStore{Store: lockStore(store, cfg.ObjectLock)}, base: store, cfg: cfg, codec: c, location: o.Location}, nil
}

func checkKey(cfg Config, ids []age.Identity) error {
	r, err := age.Decrypt(bytes.NewReader(cfg.KeyCheck), ids...)
	if err == nil {
		_, err = io.Copy(io.Discard, r)
	}
	var nomatch *age.NoIdentityMatchError
	switch {
	case errors.As(err, &nomatch):
		return fmt.Errorf("the identity does not match the repository's recipient %s; pass the identity it was initialized for: %w",
			cfg.Recipient, ErrWrongKey)
	case err != nil:
		return fmt.Errorf("%w: config key check: %v", ErrCorrupt, err)
	}
	return nil
}
