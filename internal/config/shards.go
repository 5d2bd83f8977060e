package config

import (
	"errors"
	"fmt"

	"github.com/rewind-backup/rewind/internal/repo"
)

// validateSources checks what is backed up: one source (a replica set or a
// mongos), or a cluster's shards and config server given by hand, never
// both, each connection string well formed and each shard named once with
// a name usable in repository keys.
func (c Config) validateSources() []error {
	var errs []error
	if c.Source == "" && len(c.Shards) == 0 && c.ConfigServer == "" {
		return []error{errors.New("source is not set: give --source URI, `source:` in the config or REWIND_SOURCE (for a sharded cluster without mongos: --shard NAME=URI or `shards:`, and --config-server URI)")}
	}
	if c.Source != "" && (len(c.Shards) > 0 || c.ConfigServer != "") {
		errs = append(errs, fmt.Errorf("%s and %s are both set: give either one source (a replica set, or a mongos whose shards are then found through it) or the shards and config server, not both",
			c.named("source"), c.named("shards")))
	}
	if c.Source != "" {
		if err := CheckMongoURI(c.Source.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.named("source"), err))
		}
	}
	if c.ConfigServer != "" {
		if err := CheckMongoURI(c.ConfigServer.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", c.named("config_server"), err))
		}
	}
	seen := map[string]bool{}
	from := ""
	if o := c.Origins["shards"]; o != "" {
		from = " (from " + o + ")"
	}
	for i, s := range c.Shards {
		key := func(field string) string { return fmt.Sprintf("shards[%d].%s%s", i, field, from) }
		if err := CheckShardName(s.Name); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key("name"), err))
		} else if seen[s.Name] {
			errs = append(errs, fmt.Errorf("%s: shard %q is named twice: every shard needs a name of its own", key("name"), s.Name))
		}
		seen[s.Name] = true
		if s.URI == "" {
			errs = append(errs, fmt.Errorf("%s is not set: give the connection string of shard %q's replica set", key("uri"), s.Name))
		} else if err := CheckMongoURI(s.URI.Reveal()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", key("uri"), err))
		}
	}
	return errs
}

// CheckShardName checks that name may name a shard: it names the shard's
// objects in the repository, so it keeps to what a key may hold (the
// repository's ShardID rule: up to 64 of [A-Za-z0-9._-], no leading dot,
// no "..").
func CheckShardName(name string) error {
	if name == "" {
		return errors.New("a shard needs a name: write --shard NAME=URI")
	}
	if repo.ShardID(name) != name {
		return fmt.Errorf("shard name %q: use up to 64 letters, digits, '.', '-' and '_', not starting with a dot (it names the shard's objects in the repository)", name)
	}
	return nil
}
