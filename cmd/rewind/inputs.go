package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/spf13/cobra"
)

// An input is a value a command takes from its flag if given, else from an
// environment variable, else from the config file (for the commands that
// have one): flags win, as in restic. It is resolved when the command runs,
// never as a flag default, so --help shows the variable's name and never its
// value (a password, a token, a key). This is the only place rewind reads
// these variables.
type input struct {
	flag  string // the flag's name without "--", or "" for an input with no flag
	env   string // the environment variable
	alias string // a deprecated variable still read, with a warning
	// file is the name of a second flag, --FLAG-file, giving a file that
	// holds the value ("source-file"), "" for none: a password in a file
	// stays out of the process list.
	file  string
	value string // the flag's value
	path  string // the file flag's value
}

// The inputs of rewind's commands, by their environment variables.
var (
	repoInput     = input{flag: "repo", env: "REWIND_REPO"}
	sourceInput   = input{flag: "source", env: "REWIND_SOURCE", file: "source-file"}
	identityInput = input{flag: "identity", env: "REWIND_IDENTITY", alias: "REWIND_IDENTITY_FILE"}
	apiTokenInput = input{env: "REWIND_API_TOKEN"} // no flag: a token typed on the command line lands in shell history
)

// origin says where a resolved value came from: its flag ("--repo"), an
// environment variable ("$REWIND_REPO"), the config file (fromFile), or
// nowhere ("").
type origin string

// fromFile is the origin of a value read from the config file.
const fromFile origin = "config"

// describe names the origin in a message; key is the config file's key.
func (o origin) describe(key string) string {
	if o == fromFile {
		return "`" + key + ":` in the config file"
	}
	return string(o)
}

// bind adds the input's flag to cmd; its help names the variable.
func (in input) bind(cmd *cobra.Command, usage string) *input {
	b := in
	cmd.Flags().StringVar(&b.value, in.flag, "", fmt.Sprintf("%s; default $%s", usage, in.env))
	if in.file != "" {
		fileFlag(cmd, in.flag, &b.path)
	}
	return &b
}

// resolveFile is resolve with the input's file flag (--NAME-file), which
// comes first when given (readFileFlag).
func (in *input) resolveFile(cmd *cobra.Command, fromConfig string) (string, origin, error) {
	if in.file == "" || !cmd.Flags().Changed(in.file) {
		v, from := in.resolve(cmd, fromConfig)
		return v, from, nil
	}
	var v string
	if err := readFileFlag(cmd, in.flag, in.path, &v); err != nil {
		return "", "", err
	}
	return v, origin("--" + in.file), nil
}

// resolve returns the flag's value if it was given, else the environment
// variable's, else fromConfig (the config file's value, or ""), and where
// the value came from.
func (in *input) resolve(cmd *cobra.Command, fromConfig string) (string, origin) {
	if in.flag != "" && cmd.Flags().Changed(in.flag) {
		return in.value, origin("--" + in.flag)
	}
	if v := os.Getenv(in.env); v != "" {
		return v, origin("$" + in.env)
	}
	if in.alias != "" {
		if v := os.Getenv(in.alias); v != "" {
			slog.Warn(in.alias+" is deprecated and will be removed: set "+in.env+" instead (the same value: a file path or the key itself)", "variable", in.alias)
			return v, origin("$" + in.alias)
		}
	}
	if fromConfig != "" {
		return fromConfig, fromFile
	}
	return "", ""
}

// resolveSource resolves a MongoDB connection string input (--source) and
// checks its form with the driver's parser, without connecting: a
// malformed one is a usage error naming where it came from. "" when none
// was given.
func resolveSource(cmd *cobra.Command, in *input, fromConfig string) (string, origin, error) {
	uri, from, err := in.resolveFile(cmd, fromConfig)
	if err != nil || uri == "" {
		return "", from, err
	}
	if err := config.CheckMongoURI(uri); err != nil {
		return "", from, usagef(cmd, "%s: %v", from.describe("source"), err)
	}
	return uri, from, nil
}

// durationVar adds a duration flag (the config's forms: 500ms, 36h, 7d,
// 1d12h; negative values refused) starting at def. A zero def is a default
// that comes from elsewhere, the config file, which usage names: --help
// then prints no "(default 0s)".
func durationVar(cmd *cobra.Command, p *config.Duration, name string, def config.Duration, usage string) {
	*p = def
	cmd.Flags().Var(p, name, usage)
	if def == 0 {
		cmd.Flags().Lookup(name).DefValue = ""
	}
}

// count is an integer flag with a lower bound, checked as the flag is
// parsed: `--daily -3` is a usage error that says what is accepted, not a
// value silently ignored.
type count struct {
	n   *int
	min int
}

// countVar adds an integer flag of at least min, starting at def.
func countVar(cmd *cobra.Command, p *int, name string, def, min int, usage string) {
	*p = def
	cmd.Flags().Var(count{n: p, min: min}, name, usage)
}

func (c count) String() string {
	if c.n == nil {
		return "0"
	}
	return strconv.Itoa(*c.n)
}

func (c count) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil || v < c.min {
		return fmt.Errorf("want a whole number, %d or more", c.min)
	}
	*c.n = v
	return nil
}

func (c count) Type() string { return "int" }

// closeTimeout bounds closing a connection once the work is done, so a
// server that stopped answering cannot hang the command's exit.
const closeTimeout = 10 * time.Second

// closeWithin calls close (a client's Disconnect, a source's Close) with a
// context that ends after closeTimeout; its error is of no use then.
func closeWithin(close func(context.Context) error) {
	ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
	defer cancel()
	_ = close(ctx)
}

// loadConfig reads a --config file ("" gives the defaults). A file that
// cannot be read or parsed is bad input, like a bad flag: a usage error
// (exit 2) for every command that takes --config, so that a service
// manager can tell it from a failure worth retrying.
func loadConfig(path string) (config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return cfg, &usageError{err}
	}
	return cfg, nil
}
