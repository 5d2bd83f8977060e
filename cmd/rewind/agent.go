package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/agent"
	"github.com/rewind-backup/rewind/internal/config"
)

func newAgentCmd() *cobra.Command {
	var cfgPath, source, repoURL, flush, spoolDir, apiListen string
	var check bool
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run the backup agent: capture the oplog continuously",
		Long: `Run until stopped (SIGTERM or SIGINT), keeping the repository's oplog timeline
current: entries are batched into segments and made durable at least every
capture.flush_interval. Flags override the config file; REWIND_SOURCE and
REWIND_REPO override both for secrets kept out of files and shell history.`,
		Example: `  rewind agent --source 'mongodb://db1:27017/?replicaSet=rs0' --repo file:///var/lib/rewind
  rewind agent --config /etc/rewind/rewind.yaml
  rewind agent --config /etc/rewind/rewind.yaml --check-config
  REWIND_API_TOKEN=... rewind agent --config /etc/rewind/rewind.yaml --api-listen 127.0.0.1:7070`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(cfgPath)
			if err != nil {
				return err
			}
			if source != "" {
				cfg.Source = config.Secret(source)
			}
			if repoURL != "" {
				cfg.Repo = repoURL
			}
			if spoolDir != "" {
				cfg.Capture.SpoolDir = spoolDir
			}
			if cmd.Flags().Changed("api-listen") {
				cfg.API.Listen = apiListen
			}
			if flush != "" {
				d, err := config.ParseDuration(flush)
				if err != nil {
					return usagef(cmd, "--flush-interval: %v", err)
				}
				cfg.Capture.FlushInterval = d
			}
			if err := cfg.Validate(); err != nil {
				return fmt.Errorf("invalid configuration: %w", err)
			}
			// The config's log settings apply unless the flags were given.
			if f := cmd.Flag("log-format"); f != nil && !f.Changed {
				global.logFormat = cfg.Log.Format
			}
			if f := cmd.Flag("log-level"); f != nil && !f.Changed {
				global.logLevel = cfg.Log.Level
			}
			if err := setupLogging(cmd); err != nil {
				return err
			}
			if check {
				fmt.Fprintln(cmd.OutOrStdout(), "configuration is valid")
				return nil
			}
			a := &agent.Agent{Config: cfg, Log: slog.Default(), Version: version}
			return a.Run(cmd.Context())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfgPath, "config", "", "YAML config file (unknown keys are errors)")
	f.StringVar(&source, "source", "", "MongoDB connection string (overrides source:)")
	f.StringVar(&repoURL, "repo", "", "repository URL (overrides repo:)")
	f.StringVar(&flush, "flush-interval", "", "longest wait before captured entries are uploaded, e.g. 500ms (overrides capture.flush_interval)")
	f.StringVar(&spoolDir, "spool-dir", "", "local directory for segments waiting for upload (overrides capture.spool_dir)")
	f.StringVar(&apiListen, "api-listen", "", `address of the HTTP API and dashboard, e.g. 127.0.0.1:7070 or 127.0.0.1:0 for a free port; "" turns them off (overrides api.listen)`)
	f.BoolVar(&check, "check-config", false, "validate the configuration and exit")
	return cmd
}
