// Package config loads rewind's YAML configuration strictly: unknown keys are
// errors, defaults are set before decoding, and secrets redact themselves so
// they never reach a log line.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/rewind-backup/rewind/internal/storage"
)

// Config is the whole configuration of an agent.
type Config struct {
	// Source is the MongoDB connection string to back up: a replica set
	// member, or a sharded cluster's mongos (its shards are then found
	// through it and captured directly).
	Source Secret `yaml:"source"`
	// SourceFile is a file holding Source (one trailing newline trimmed),
	// read when the config is loaded: a password kept out of the config
	// file and the process list. Not with Source.
	SourceFile string `yaml:"source_file"`
	// Shards name a sharded cluster's shards explicitly, for operators
	// who cannot reach mongos: each shard's name (as in config.shards) and
	// the connection string of its replica set. Not with Source.
	Shards []ShardSource `yaml:"shards"`
	// ConfigServer is the connection string of a cluster's config server
	// replica set: captured as shard "config", and watched for shards
	// added or removed. With Shards, or alone (the shards are then read
	// from its config.shards).
	ConfigServer Secret `yaml:"config_server"`
	// Repo is the repository URL (file://, s3://, gs://, azblob://).
	Repo string `yaml:"repo"`
	// Identity is the age identity that reads an encrypted repository's
	// data (the agent compacts segments, prunes and checks snapshots with
	// it): the path of an identity file, or (from REWIND_IDENTITY) the key
	// itself, hence a Secret.
	Identity  Secret    `yaml:"identity"`
	Capture   Capture   `yaml:"capture"`
	Snapshot  Snapshot  `yaml:"snapshot"`
	Retention Retention `yaml:"retention"`
	API       API       `yaml:"api"`
	Alerts    Alerts    `yaml:"alerts"`
	Drills    Drills    `yaml:"drills"`
	Lock      Lock      `yaml:"lock"`
	Log       Log       `yaml:"log"`

	// Origins says where the values that did not come from the config
	// file came from, by key ("source", "api.listen", "log.level"...): a
	// flag ("--source") or an environment variable ("$REWIND_SOURCE").
	// cmd/rewind's input resolver sets it; Validate names them in its
	// messages. Never read from the file.
	Origins map[string]string `yaml:"-"`
}

// ShardSource is one shard of a sharded cluster given by hand.
type ShardSource struct {
	// Name is the shard's name, its _id in config.shards; it names the
	// shard's objects in the repository.
	Name string `yaml:"name"`
	// URI is the connection string of the shard's replica set.
	URI Secret `yaml:"uri"`
}

// Capture tunes oplog capture.
type Capture struct {
	// FlushInterval bounds how long a read entry waits before it is made
	// durable: it is the recovery point objective.
	FlushInterval Duration `yaml:"flush_interval"`
	// MaxSegmentBytes flushes a segment early once it holds this many bytes.
	MaxSegmentBytes int64 `yaml:"max_segment_bytes"`
	// SpoolDir holds segments that could not be uploaded yet.
	SpoolDir string `yaml:"spool_dir"`
	// SpoolMaxBytes bounds the spool; when full, capture pauses reading.
	SpoolMaxBytes int64 `yaml:"spool_max_bytes"`
	// UploadStallAfter is the least time a segment upload may take before
	// it is abandoned as stalled (a half-open storage connection) and
	// retried from the spool; the segment's size at 32 KiB/s is added.
	UploadStallAfter Duration `yaml:"upload_stall_after"`
	// CompactInterval is how often old small segments are merged; zero
	// disables compaction.
	CompactInterval Duration `yaml:"compact_interval"`
	// CompactAfter is how old a segment must be before it is merged.
	CompactAfter Duration `yaml:"compact_after"`
	// CompactTargetBytes is the size merged segments aim for.
	CompactTargetBytes int64 `yaml:"compact_target_bytes"`
	// HeartbeatInterval is how often each shard's heartbeat object (how
	// far capture is durable and covered, read by `rewind status`, `list`
	// and snapshots taken while the agent captures) is rewritten.
	HeartbeatInterval Duration `yaml:"heartbeat_interval"`
}

// Snapshot schedules base snapshots.
type Snapshot struct {
	// Every is the interval between scheduled snapshots (default daily).
	// The agent also takes a base snapshot at start when none precedes the
	// timeline it captures. Zero turns every automatic snapshot off.
	Every    Duration `yaml:"every"`
	Parallel int      `yaml:"parallel"`
}

// Drills schedules restore drills (README "Restore drills"): every Every,
// the agent restores each of Points into the empty Scratch deployment and
// compares it with the source; it also drills each new snapshot's own
// point right after it, which records the reference checksums later
// random drills compare with.
type Drills struct {
	// Every is the interval between rounds; 0 (the default) turns drills off.
	Every Duration `yaml:"every"`
	// Scratch is the connection string of an empty deployment the drills
	// restore into and drop afterwards; never the source.
	Scratch Secret `yaml:"scratch"`
	// Points are what each round drills: latest and/or random (default both).
	Points []string `yaml:"points"`
	// NS are --ns patterns (db, db.*, db.coll); empty: everything.
	NS []string `yaml:"ns"`
}

// Retention says what the repository keeps.
type Retention struct {
	RestoreWindow Duration `yaml:"restore_window"`
	Hourly        int      `yaml:"hourly"`
	Daily         int      `yaml:"daily"`
	Weekly        int      `yaml:"weekly"`
	Monthly       int      `yaml:"monthly"`
	// PruneInterval is how often the agent applies the policy; zero
	// disables pruning by the agent (run `rewind prune` by hand).
	PruneInterval Duration `yaml:"prune_interval"`
}

// API configures the agent's HTTP server.
type API struct {
	Listen     string `yaml:"listen"`
	Token      Secret `yaml:"token"`
	TokenFile  string `yaml:"token_file"`
	PublicRead bool   `yaml:"public_read"`
	TLSCert    string `yaml:"tls_cert"`
	TLSKey     string `yaml:"tls_key"`
}

// Alerts sets the thresholds of the agent's alerts and where they are sent.
// A threshold of zero turns its alert off.
type Alerts struct {
	// CheckInterval is how often the conditions are evaluated.
	CheckInterval Duration `yaml:"check_interval"`
	// LagAbove fires capture_lag when the capture lag exceeds it.
	LagAbove Duration `yaml:"lag_above"`
	// SourceUnreachableFor fires source_unreachable when the source has
	// not answered for this long.
	SourceUnreachableFor Duration `yaml:"source_unreachable_for"`
	// OplogWindowBelow fires oplog_window when the source's oplog holds less
	// than this: an outage longer than the window becomes a gap.
	OplogWindowBelow Duration `yaml:"oplog_window_below"`
	// StorageErrorsFor fires storage_errors when repository writes have
	// failed, with none succeeding, for this long.
	StorageErrorsFor Duration `yaml:"storage_errors_for"`
	// SpoolAbovePercent fires spool_full when the spool holds more than
	// this percentage of capture.spool_max_bytes.
	SpoolAbovePercent int `yaml:"spool_above_percent"`
	// Webhooks receive every alert when it fires and when it resolves.
	Webhooks []Webhook `yaml:"webhooks"`
}

// Webhook is one endpoint alerts are POSTed to.
type Webhook struct {
	URL WebhookURL `yaml:"url"`
	// Format is "json" (the generic body, the default) or "slack" (an
	// incoming-webhook body).
	Format string `yaml:"format"`
	// Headers are sent with every delivery; their values are secrets.
	Headers map[string]Secret `yaml:"headers"`
}

// Webhook formats.
const (
	WebhookJSON  = "json"
	WebhookSlack = "slack"
)

// Lock times the repository's writer lock. Whoever holds it refreshes it
// every Refresh; a lock not refreshed for StaleAfter is stale, and another
// agent or server takes the repository over: a failover takes at most
// StaleAfter plus one Refresh.
type Lock struct {
	Refresh    Duration `yaml:"refresh"`
	StaleAfter Duration `yaml:"stale_after"`
}

// Log configures structured logging.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// Default returns the configuration used when a key is not set.
func Default() Config {
	return Config{
		Capture: Capture{
			FlushInterval:      Duration(500 * time.Millisecond),
			MaxSegmentBytes:    16 << 20,
			SpoolMaxBytes:      1 << 30,
			UploadStallAfter:   Duration(30 * time.Second),
			CompactInterval:    Duration(5 * time.Minute),
			CompactAfter:       Duration(10 * time.Minute),
			CompactTargetBytes: 64 << 20,
			HeartbeatInterval:  Duration(10 * time.Second),
		},
		Snapshot:  Snapshot{Every: Duration(24 * time.Hour), Parallel: 4},
		Retention: Retention{RestoreWindow: Duration(7 * 24 * time.Hour), PruneInterval: Duration(time.Hour)},
		API:       API{Listen: "127.0.0.1:7070"},
		Alerts: Alerts{CheckInterval: Duration(15 * time.Second), LagAbove: Duration(time.Minute), SourceUnreachableFor: Duration(time.Minute),
			OplogWindowBelow: Duration(12 * time.Hour), StorageErrorsFor: Duration(5 * time.Minute), SpoolAbovePercent: 80},
		Drills: Drills{Points: []string{"latest", "random"}},
		Lock:   Lock{Refresh: Duration(10 * time.Second), StaleAfter: Duration(60 * time.Second)},
		Log:    Log{Format: "text", Level: "info"},
	}
}

// Load reads a configuration file over the defaults. An empty path means
// defaults only. It does not validate (Validate does, once flags and the
// environment have been applied: see cmd/rewind's inputs) and reads no
// environment variable.
func Load(path string) (Config, error) {
	cfg := Default()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("read config: %w", err)
		}
		if err := decode(data, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
		if err := cfg.readSourceFile(); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	return cfg, nil
}

// readSourceFile sets Source from SourceFile, when given.
func (c *Config) readSourceFile() error {
	if c.SourceFile == "" {
		return nil
	}
	if c.Source != "" {
		return fmt.Errorf("set source or source_file, not both")
	}
	s, warning, err := ReadSecretFile(c.SourceFile, "source_file")
	if warning != "" {
		slog.Warn(warning)
	}
	c.Source = Secret(s)
	return err
}

// decode parses YAML strictly into cfg, keeping the defaults already in it.
func decode(data []byte, cfg any) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(cfg); err != nil && !errors.Is(err, io.EOF) {
		// One line per problem from the YAML library; errors here are one sentence.
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
		msg = strings.Join(strings.Fields(strings.ReplaceAll(msg, "\n", ";")), " ")
		for _, t := range []string{"config.serverFile", "config.entry"} {
			msg = strings.ReplaceAll(msg, "not found in type "+t, "is not a known key")
		}
		msg = strings.ReplaceAll(msg, "not found in type config.", "is not a known key of ")
		return fmt.Errorf("%s", msg)
	}
	return nil
}

// Validate checks the values a running agent depends on, before anything
// is opened or connected, so that malformed input is refused up front (the
// CLI exits 2 on it): the source is a MongoDB connection string, the
// repository URL has a scheme rewind knows, the API's address is
// HOST:PORT and its token and TLS files can be read, and every number and
// name is in range. Each problem names its key, and the flag or variable
// that gave the value (Origins). A reachable but wrong server or bucket is
// not found here: that is a failure of the run.
func (c Config) Validate() error {
	errs := c.validateSources()
	if c.Repo == "" {
		errs = append(errs, errors.New("repo is not set: give --repo URL, `repo:` in the config or REWIND_REPO"))
	} else if err := storage.CheckURL(c.Repo); err != nil {
		errs = append(errs, fmt.Errorf("%s: %w", c.named("repo"), err))
	}
	if c.Capture.FlushInterval <= 0 {
		errs = append(errs, fmt.Errorf("%s must be positive", c.named("capture.flush_interval")))
	}
	if c.Capture.MaxSegmentBytes < 1<<10 {
		errs = append(errs, errors.New("capture.max_segment_bytes must be at least 1024"))
	}
	if c.Capture.UploadStallAfter < 0 {
		errs = append(errs, errors.New("capture.upload_stall_after must not be negative (0: the default, 30s)"))
	}
	if h := c.Capture.HeartbeatInterval.Std(); h <= 0 || h > 20*time.Second {
		// status counts an agent whose heartbeat is older than 30 s as not
		// running: a slower heartbeat would make a live agent look dead.
		errs = append(errs, fmt.Errorf("%s must be more than 0 and at most 20s (the default is 10s)", c.named("capture.heartbeat_interval")))
	}
	if c.Capture.SpoolMaxBytes < c.Capture.MaxSegmentBytes {
		errs = append(errs, errors.New("capture.spool_max_bytes must be at least capture.max_segment_bytes"))
	}
	if c.Snapshot.Parallel < 1 {
		errs = append(errs, errors.New("snapshot.parallel must be at least 1"))
	}
	if err := c.Retention.Validate(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, c.validateAPI()...)
	errs = append(errs, c.Alerts.validate()...)
	errs = append(errs, c.validateDrills()...)
	errs = append(errs, c.Lock.validate()...)
	errs = append(errs, c.validateLog()...)
	return errors.Join(errs...)
}

// Validate checks the retention section alone (`rewind prune --config`
// reads only it).
func (r Retention) Validate() error {
	if r.RestoreWindow < 0 || r.PruneInterval < 0 || r.Hourly < 0 || r.Daily < 0 || r.Weekly < 0 || r.Monthly < 0 {
		return errors.New("retention.restore_window, prune_interval, hourly, daily, weekly and monthly must not be negative")
	}
	return nil
}

// validateDrills checks the drills section when drills are on.
func (c Config) validateDrills() []error {
	d := c.Drills
	switch {
	case d.Every < 0:
		return []error{errors.New("drills.every must not be negative (0 turns drills off)")}
	case d.Every == 0:
		return nil
	}
	var errs []error
	if d.Scratch == "" {
		errs = append(errs, errors.New("drills.scratch is not set: give the connection string of an empty deployment the drills restore into (or drills.every: 0)"))
	} else if err := CheckMongoURI(d.Scratch.Reveal()); err != nil {
		errs = append(errs, fmt.Errorf("drills.scratch: %w", err))
	} else if d.Scratch == c.Source {
		errs = append(errs, errors.New("drills.scratch is the source: a drill drops everything it restored; give an empty deployment of its own"))
	}
	if len(d.Points) == 0 {
		errs = append(errs, errors.New("drills.points is empty: give latest, random or both"))
	}
	for _, p := range d.Points {
		if p != "latest" && p != "random" {
			errs = append(errs, fmt.Errorf("drills.points: %q is not latest or random", p))
		}
	}
	for _, ns := range d.NS {
		if db, _, _ := strings.Cut(ns, "."); db == "" {
			errs = append(errs, fmt.Errorf("drills.ns: %q: want db, db.* or db.coll", ns))
		}
	}
	return errs
}

// validate keeps a holder able to refresh its lock twice before it goes
// stale: one slow refresh must not hand the repository over.
func (l Lock) validate() []error {
	if l.Refresh <= 0 || l.StaleAfter <= 0 {
		return []error{errors.New("lock.refresh and lock.stale_after must be positive")}
	}
	if l.StaleAfter < 2*l.Refresh {
		return []error{fmt.Errorf("lock.stale_after %s must be at least twice lock.refresh %s", l.StaleAfter, l.Refresh)}
	}
	return nil
}

func (a Alerts) validate() []error {
	var errs []error
	if a.CheckInterval <= 0 {
		errs = append(errs, errors.New("alerts.check_interval must be positive"))
	}
	if a.LagAbove < 0 || a.OplogWindowBelow < 0 || a.StorageErrorsFor < 0 || a.SourceUnreachableFor < 0 {
		errs = append(errs, errors.New("alerts.lag_above, source_unreachable_for, oplog_window_below and storage_errors_for must not be negative (0 turns an alert off)"))
	}
	if a.SpoolAbovePercent < 0 || a.SpoolAbovePercent > 100 {
		errs = append(errs, fmt.Errorf("alerts.spool_above_percent %d: want 1 to 100 (0 turns the alert off)", a.SpoolAbovePercent))
	}
	for i, h := range a.Webhooks {
		if err := h.URL.check(); err != nil {
			errs = append(errs, fmt.Errorf("alerts.webhooks[%d].url: %w", i, err))
		}
		switch h.Format {
		case "", WebhookJSON, WebhookSlack:
		default:
			errs = append(errs, fmt.Errorf("alerts.webhooks[%d].format %q is not json or slack", i, h.Format))
		}
		for k := range h.Headers {
			if k == "" || strings.ContainsAny(k, " :\r\n") {
				errs = append(errs, fmt.Errorf("alerts.webhooks[%d].headers: %q is not a header name", i, k))
			}
		}
	}
	return errs
}
