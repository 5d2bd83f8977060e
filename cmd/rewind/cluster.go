package main

import (
	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/config"
)

// configServerInput is a sharded cluster's config server (a secret: its URI
// may hold a password).
var configServerInput = input{flag: "config-server", env: "REWIND_CONFIG_SERVER"}

// clusterFlags are --shard NAME=URI (repeatable) and --config-server URI,
// which name a sharded cluster by hand, for operators who cannot reach
// mongos (a mongos URI given as --source needs neither).
type clusterFlags struct {
	shards       []string
	configServer *input
}

func (f *clusterFlags) add(cmd *cobra.Command) {
	// StringArray: a URI holds commas. The help shows no default, never a value.
	cmd.Flags().StringArrayVar(&f.shards, "shard", nil, "a sharded cluster's shard as NAME=URI, NAME its name in config.shards and URI its replica set's connection string (repeatable; instead of --source)")
	f.configServer = configServerInput.bind(cmd, "connection string of a sharded cluster's config server replica set (with --shard, or alone: its config.shards lists the shards)")
}

// resolve returns the shards given with --shard (else fromConfig's) and the
// config server (flag, else variable, else fromConfig's), checked: a
// malformed one is a usage error that never shows a password.
func (f *clusterFlags) resolve(cmd *cobra.Command, fromConfig config.Config) ([]config.ShardSource, string, origin, error) {
	shards := fromConfig.Shards
	if len(f.shards) > 0 {
		shards = nil
		for _, v := range f.shards {
			s, err := cluster.ParseShard(v)
			if err != nil {
				return nil, "", "", usagef(cmd, "%v", err)
			}
			shards = append(shards, config.ShardSource{Name: s.Name, URI: config.Secret(s.URI)})
		}
	}
	cfgURI, from := f.configServer.resolve(cmd, fromConfig.ConfigServer.Reveal())
	if cfgURI != "" {
		if err := config.CheckMongoURI(cfgURI); err != nil {
			return nil, "", "", usagef(cmd, "%s: %v", from.describe("config_server"), err)
		}
	}
	return shards, cfgURI, from, nil
}

// inputs are the cluster inputs for source.OpenDeployment; uri is --source.
func (f *clusterFlags) inputs(cmd *cobra.Command, uri string) (cluster.Inputs, error) {
	shards, cfgURI, _, err := f.resolve(cmd, config.Config{})
	if err != nil {
		return cluster.Inputs{}, err
	}
	if uri != "" && (len(shards) > 0 || cfgURI != "") {
		return cluster.Inputs{}, usagef(cmd, "--source and --shard/--config-server are both given: give one source (a replica set, or a mongos whose shards are found through it), or the shards and config server")
	}
	in := cluster.Inputs{Router: uri, ConfigServer: cfgURI}
	for _, s := range shards {
		in.Shards = append(in.Shards, cluster.Shard{Name: s.Name, URI: s.URI.Reveal()})
	}
	return in, nil
}
