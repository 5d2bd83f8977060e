package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/server"
)

func newServerCmd() *cobra.Command {
	var cfgPath, listen string
	var check bool
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Back up many deployments from one process, with an API to add them",
		Long: `Run until stopped (SIGTERM or SIGINT), capturing every deployment of the
config file's deployments: list, and those added over the API
(POST /api/v1/deployments, kept in state_dir). Each runs the same agent as
rewind agent, on its own: one that fails is retried with backoff and alerted
(deployment_failed), and never stops the others. Several servers may run
with the same deployments: each repository's writer lock lets one capture,
the others stand by and take over when its lock goes stale
(lock.stale_after plus one lock.refresh). SIGHUP or POST /-/reload reads the
file again; only the deployments that changed restart. The API token comes
from api.token or api.token_file, or REWIND_API_TOKEN. A wrong file exits 2.`,
		Example: `  rewind server --config /etc/rewind/server.yaml
  rewind server --config /etc/rewind/server.yaml --check-config
  REWIND_API_TOKEN=... rewind server --config server.yaml --api-listen 0.0.0.0:7070`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := serverConfig(cmd, cfgPath, listen)
			if err != nil {
				return err
			}
			if check {
				fmt.Fprintf(cmd.OutOrStdout(), "configuration is valid: %d deployments declared\n", len(cfg.Deployments))
				return nil
			}
			s, err := server.New(cfgPath, cfg, slog.Default(), version)
			if err != nil {
				return &usageError{err}
			}
			go reloadOnHangup(cmd.Context(), s)
			return s.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&cfgPath, "config", "", "YAML config file with a deployments: list (required; unknown keys are errors)")
	cmd.Flags().StringVar(&listen, "api-listen", "", "address of the HTTP API and dashboard (overrides api.listen)")
	cmd.Flags().BoolVar(&check, "check-config", false, "validate the configuration without connecting and exit")
	return cmd
}

// serverConfig reads the file, then the token variable and the flags; any
// mistake is a usage error found before anything connects.
func serverConfig(cmd *cobra.Command, path, listen string) (config.Server, error) {
	if path == "" {
		return config.Server{}, usagef(cmd, "--config FILE is required: the deployments to back up are listed in it (see README, rewind server)")
	}
	cfg, err := config.LoadServer(path)
	if err != nil {
		return cfg, &usageError{fmt.Errorf("invalid configuration: %s", strings.ReplaceAll(err.Error(), "\n", "; "))}
	}
	if tok, _ := apiTokenInput.resolve(cmd, ""); tok != "" {
		cfg.Defaults.API.Token, cfg.Defaults.API.TokenFile = config.Secret(tok), ""
	}
	if cmd.Flags().Changed("api-listen") {
		cfg.Defaults.API.Listen = listen
	}
	// The file's log settings apply, unless the flags say otherwise.
	if !cmd.Flags().Changed("log-format") {
		global.logFormat = cfg.Defaults.Log.Format
	}
	if !cmd.Flags().Changed("log-level") {
		global.logLevel = cfg.Defaults.Log.Level
	}
	if err := setupLogging(cmd); err != nil {
		return cfg, err
	}
	return cfg, nil
}

// reloadOnHangup reads the file again on every SIGHUP.
func reloadOnHangup(ctx context.Context, s *server.Server) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	defer signal.Stop(ch)
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
			if err := s.Reload(ctx); err != nil {
				slog.Error("reload refused: the running deployments go on as they were", "err", err)
			}
		}
	}
}
