package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
)

// agentFlags are the flags of `rewind agent`.
type agentFlags struct {
	cfgPath, spoolDir, apiListen string
	flush                        config.Duration
	source, repo, identity       *input
	cluster                      clusterFlags
	check                        bool
}

func newAgentCmd() *cobra.Command {
	var f agentFlags
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the backup agent: capture the oplog continuously",
		Long: `Run until stopped (SIGTERM or SIGINT), keeping the repository's oplog timeline
current: entries are batched into segments and made durable at least every
capture.flush_interval. Each setting comes from its flag if given, else from
its environment variable (REWIND_SOURCE, REWIND_REPO, REWIND_IDENTITY,
REWIND_API_TOKEN: secrets kept out of files and shell history), else from the
config file. A config file or flag that is wrong exits 2.`,
		Example: `  rewind agent --source 'mongodb://db1:27017/?replicaSet=rs0' --repo file:///var/lib/rewind
  rewind agent --source 'mongodb://backup:PW@mongos1:27017/?authSource=admin' --repo s3://backups/cluster1
  rewind agent --shard shard01=mongodb://h1:27018/?replicaSet=shard01 --shard shard02=mongodb://h2:27018/?replicaSet=shard02 \
      --config-server mongodb://cfg1:27019/?replicaSet=configRepl --repo file:///var/lib/rewind
  rewind agent --config /etc/rewind/rewind.yaml
  rewind agent --config /etc/rewind/rewind.yaml --check-config
  REWIND_API_TOKEN=... rewind agent --config /etc/rewind/rewind.yaml --api-listen 127.0.0.1:7070`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runAgent(cmd, &f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.cfgPath, "config", "", "YAML config file (unknown keys are errors)")
	f.source = sourceInput.bind(cmd, "MongoDB connection string (overrides source:)")
	f.repo = repoInput.bind(cmd, "repository URL (overrides repo:)")
	f.cluster.add(cmd)
	f.identity = identityInput.bind(cmd, "age identity, for compaction, pruning and alerts on an encrypted repository: a file path, or in the variable the key itself (overrides identity:)")
	durationVar(cmd, &f.flush, "flush-interval", 0, fmt.Sprintf("longest wait before captured entries are uploaded (overrides capture.flush_interval; default from the config, else %s)",
		config.Default().Capture.FlushInterval))
	fl.StringVar(&f.spoolDir, "spool-dir", "", "local directory for segments waiting for upload (overrides capture.spool_dir)")
	fl.StringVar(&f.apiListen, "api-listen", "", `address of the HTTP API and dashboard, e.g. 127.0.0.1:7070 or 127.0.0.1:0 for a free port; "" turns them off (overrides api.listen)`)
	fl.BoolVar(&f.check, "check-config", false, "validate the configuration without connecting, print the source, repository and identity in use and where each came from (flag, variable or config file), and exit")
	return cmd
}

// config builds the agent's configuration: the file, then the environment
// and the flags through the inputs (flag, else variable, else file), with
// where each overridden value came from in cfg.Origins. Any mistake in it
// is a usage error, found before anything is opened or connected.
func (f *agentFlags) config(cmd *cobra.Command) (config.Config, error) {
	cfg, err := loadConfig(f.cfgPath)
	if err != nil {
		return cfg, err
	}
	cfg.Origins = map[string]string{}
	note := func(key string, from origin) {
		if from != "" && from != fromFile {
			cfg.Origins[key] = string(from)
		}
	}
	src, from, err := f.source.resolveFile(cmd, cfg.Source.Reveal())
	if err != nil {
		return cfg, err
	}
	cfg.Source = config.Secret(src)
	note("source", from)
	cfg.Repo, from = f.repo.resolve(cmd, cfg.Repo)
	note("repo", from)
	shards, cfgURI, from, err := f.cluster.resolve(cmd, cfg)
	if err != nil {
		return cfg, err
	}
	cfg.Shards, cfg.ConfigServer = shards, config.Secret(cfgURI)
	note("config_server", from)
	if len(f.cluster.shards) > 0 {
		note("shards", "--shard")
	}
	// A missing or unreadable identity stops the agent before it starts.
	_, id, from, err := loadIdentity(cmd, f.identity, cfg.Identity.Reveal())
	if err != nil {
		return cfg, err
	}
	cfg.Identity = config.Secret(id)
	note("identity", from)
	if tok, from := apiTokenInput.resolve(cmd, ""); tok != "" {
		// The variable wins over the file's token and token_file alike.
		cfg.API.Token, cfg.API.TokenFile = config.Secret(tok), ""
		note("api.token", from)
	}
	flags := cmd.Flags()
	for _, o := range []struct {
		flag, key string
		set       func()
	}{
		{"spool-dir", "capture.spool_dir", func() { cfg.Capture.SpoolDir = f.spoolDir }},
		{"api-listen", "api.listen", func() { cfg.API.Listen = f.apiListen }},
		{"flush-interval", "capture.flush_interval", func() { cfg.Capture.FlushInterval = f.flush }},
		{"log-format", "log.format", func() { cfg.Log.Format = global.logFormat }},
		{"log-level", "log.level", func() { cfg.Log.Level = global.logLevel }},
	} {
		if fl := flags.Lookup(o.flag); fl != nil && fl.Changed {
			o.set()
			note(o.key, origin("--"+o.flag))
		}
	}
	if err := cfg.Validate(); err != nil {
		where := ""
		if f.cfgPath != "" {
			where = " (--config " + f.cfgPath + ")"
		}
		// One line: a service manager's journal shows each line apart.
		return cfg, &usageError{fmt.Errorf("invalid configuration%s: %s", where, strings.ReplaceAll(err.Error(), "\n", "; "))}
	}
	return cfg, nil
}

func runAgent(cmd *cobra.Command, f *agentFlags) error {
	cfg, err := f.config(cmd)
	if err != nil {
		return err
	}
	// The config's log settings (the flags' when given) apply from now on.
	global.logFormat, global.logLevel = cfg.Log.Format, cfg.Log.Level
	if err := setupLogging(cmd); err != nil {
		return err
	}
	if f.check {
		return printCheck(cmd.OutOrStdout(), cfg, f.cfgPath)
	}
	a := &agent.Agent{Config: cfg, Log: slog.Default(), Version: version}
	return a.Run(cmd.Context())
}

// printCheck is --check-config's answer: the configuration is valid, and
// for the source, the repository and the identity, the value (without its
// secrets) and where it came from.
func printCheck(w io.Writer, cfg config.Config, cfgPath string) error {
	fmt.Fprintln(w, "configuration is valid")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	id := cfg.Identity.Reveal()
	shownID := id
	switch {
	case id == "":
		shownID = "none"
	case strings.HasPrefix(strings.TrimSpace(id), "AGE-SECRET-KEY-"):
		shownID = "the key itself (AGE-SECRET-KEY-" + redact.Mask + ")"
	}
	for _, v := range []struct{ key, shown, value, unset string }{
		{"source", cfg.Source.String(), cfg.Source.Reveal(), "not set"},
		{"shards", shardNames(cfg.Shards), shardNames(cfg.Shards), "none"},
		{"config_server", cfg.ConfigServer.String(), cfg.ConfigServer.Reveal(), "not set"},
		{"repo", redact.URL(cfg.Repo), cfg.Repo, "not set"},
		{"identity", shownID, id, "not set: enough to capture; compacting and pruning an encrypted repository need it"},
	} {
		from := v.unset
		switch {
		case cfg.Origins[v.key] != "":
			from = "from " + cfg.Origins[v.key]
		case v.value != "":
			from = "from `" + v.key + ":` in " + cfgPath
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.key, v.shown, from)
	}
	return tw.Flush()
}

// shardNames lists the shards given by hand, without their URIs.
func shardNames(shards []config.ShardSource) string {
	names := make([]string, len(shards))
	for i, s := range shards {
		names[i] = s.Name
	}
	return strings.Join(names, ", ")
}
