package main

import (
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/repo"
)

// globalOptions are the flags every command accepts.
type globalOptions struct {
	logFormat string
	logLevel  string
}

var global globalOptions

func addGlobalFlags(root *cobra.Command) {
	f := root.PersistentFlags()
	f.StringVar(&global.logFormat, "log-format", "text", "log format: text or json")
	f.StringVar(&global.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := setupLogging(cmd); err != nil {
			return err
		}
		warnSecretFlags(cmd, cmd.ErrOrStderr())
		// The audit entries of what this command does name it.
		cmd.SetContext(repo.WithActor(cmd.Context(), repo.Actor{Via: cmd.CommandPath()}))
		return nil
	}
}

// setupLogging installs the default slog logger on stderr.
func setupLogging(cmd *cobra.Command) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(global.logLevel)); err != nil {
		return usagef(cmd, "--log-level %q is not one of debug, info, warn, error", global.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch global.logFormat {
	case "text":
		h = slog.NewTextHandler(os.Stderr, opts)
	case "json":
		h = slog.NewJSONHandler(os.Stderr, opts)
	default:
		return usagef(cmd, "--log-format %q is not text or json", global.logFormat)
	}
	slog.SetDefault(slog.New(h))
	return nil
}
