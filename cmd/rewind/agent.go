package main

import (
	"fmt"
	"log/slog"

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
	f.identity = identityInput.bind(cmd, "age identity, for compaction, pruning and alerts on an encrypted repository: a file path, or in the variable the key itself (overrides identity:)")
	fl.Var(&f.flush, "flush-interval", "longest wait before captured entries are uploaded, e.g. 500ms (overrides capture.flush_interval)")
	fl.StringVar(&f.spoolDir, "spool-dir", "", "local directory for segments waiting for upload (overrides capture.spool_dir)")
	fl.StringVar(&f.apiListen, "api-listen", "", `address of the HTTP API and dashboard, e.g. 127.0.0.1:7070 or 127.0.0.1:0 for a free port; "" turns them off (overrides api.listen)`)
	fl.BoolVar(&f.check, "check-config", false, "validate the configuration, print where the source and repository come from, and exit")
	return cmd
}

// config builds the agent's configuration: the file, then the environment
// and the flags through the inputs (flag, else variable, else file). Any
// mistake in it is a usage error.
func (f *agentFlags) config(cmd *cobra.Command) (config.Config, error) {
	cfg, err := loadConfig(f.cfgPath)
	if err != nil {
		return cfg, err
	}
	src, _ := f.source.resolve(cmd, cfg.Source.Reveal())
	cfg.Source = config.Secret(src)
	cfg.Repo, _ = f.repo.resolve(cmd, cfg.Repo)
	// A missing or unreadable identity stops the agent before it starts.
	_, id, err := loadIdentity(cmd, f.identity, cfg.Identity.Reveal())
	if err != nil {
		return cfg, err
	}
	cfg.Identity = config.Secret(id)
	tokenIn := apiTokenInput
	if tok, from := tokenIn.resolve(cmd, cfg.API.Token.Reveal()); from == fromEnv {
		// The variable wins over the file's token and token_file alike.
		cfg.API.Token, cfg.API.TokenFile = config.Secret(tok), ""
	}
	if f.spoolDir != "" {
		cfg.Capture.SpoolDir = f.spoolDir
	}
	if cmd.Flags().Changed("api-listen") {
		cfg.API.Listen = f.apiListen
	}
	if cmd.Flags().Changed("flush-interval") {
		cfg.Capture.FlushInterval = f.flush
	}
	if err := cfg.Validate(); err != nil {
		return cfg, &usageError{fmt.Errorf("invalid configuration: %w", err)}
	}
	return cfg, nil
}

func runAgent(cmd *cobra.Command, f *agentFlags) error {
	cfg, err := f.config(cmd)
	if err != nil {
		return err
	}
	// The config's log settings apply unless the flags were given.
	if fl := cmd.Flag("log-format"); fl != nil && !fl.Changed {
		global.logFormat = cfg.Log.Format
	}
	if fl := cmd.Flag("log-level"); fl != nil && !fl.Changed {
		global.logLevel = cfg.Log.Level
	}
	if err := setupLogging(cmd); err != nil {
		return err
	}
	if f.check {
		fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid: source %s, repository %s\n", cfg.Source, redact.URL(cfg.Repo))
		return nil
	}
	a := &agent.Agent{Config: cfg, Log: slog.Default(), Version: version}
	return a.Run(cmd.Context())
}
