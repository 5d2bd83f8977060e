package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/redact"
)

// fileFlag adds --NAME-file to cmd: a file holding the value of --NAME, so
// that a password stays out of the process list (ps shows every user the
// command line).
func fileFlag(cmd *cobra.Command, name string, path *string) {
	cmd.Flags().StringVar(path, name+"-file", "", fmt.Sprintf("file holding the value of --%s (keeps a password out of the process list)", name))
}

// readFileFlag sets *value from the file of --NAME-file, when that flag
// was given (config.ReadSecretFile). Giving --NAME too, or a file that
// cannot be read, is a usage error.
func readFileFlag(cmd *cobra.Command, name, path string, value *string) error {
	if !cmd.Flags().Changed(name + "-file") {
		return nil
	}
	if cmd.Flags().Changed(name) {
		return usagef(cmd, "give --%s or --%s-file, not both", name, name)
	}
	v, warning, err := config.ReadSecretFile(path, "--"+name+"-file")
	if err != nil {
		return usagef(cmd, "%v", err)
	}
	if warning != "" {
		printWarning(cmd.ErrOrStderr(), warning)
	}
	*value = v
	return nil
}

// printWarning writes one warning line on w: "rewind: warning: MSG", or
// with --log-format json a JSON log line like the others.
func printWarning(w io.Writer, msg string) {
	if global.logFormat == "json" {
		slog.New(slog.NewJSONHandler(w, nil)).Warn(msg)
		return
	}
	fmt.Fprintf(w, "rewind: warning: %s\n", msg)
}

// secretAdvice is, by flag that has no --FLAG-file, where its secret
// should go instead.
var secretAdvice = map[string]string{
	"config-server": "set $REWIND_CONFIG_SERVER instead, or config_server: in the config file",
	"shard":         "list the shards under shards: in the config file instead",
	"repo":          "set $REWIND_REPO instead, or give the credentials through the backend's own environment variables",
}

// warnSecretFlags writes one warning line on w for each flag given on the
// command line whose value holds a credential (a password in a URI, a
// secret query parameter): every user of the machine can read it in the
// process list. The line shows the value redacted and says where to put
// it instead.
func warnSecretFlags(cmd *cobra.Command, w io.Writer) {
	cmd.Flags().Visit(func(f *pflag.Flag) {
		values := []string{f.Value.String()}
		if sv, ok := f.Value.(pflag.SliceValue); ok {
			values = sv.GetSlice()
		}
		for _, v := range values {
			shown, ok := withCredentials(v)
			if !ok {
				continue
			}
			advice := secretAdvice[f.Name]
			switch {
			case cmd.Flags().Lookup(f.Name+"-file") != nil:
				advice = "put it in a file readable only by you and pass --" + f.Name + "-file FILE instead"
			case advice == "":
				advice = "give it through an environment variable or the config file instead"
			}
			msg := fmt.Sprintf("--%s holds a password (%s): other users of this machine can read it in the process list; %s", f.Name, shown, advice)
			printWarning(w, msg)
			return
		}
	})
}

// withCredentials reports whether v (a URI, or NAME=URI) holds a
// credential by redact's rule, and returns it redacted.
func withCredentials(v string) (string, bool) {
	i := strings.Index(v, "://")
	if i < 0 {
		return "", false
	}
	if eq := strings.LastIndex(v[:i], "="); eq >= 0 {
		v = v[eq+1:] // --shard NAME=URI
	}
	shown := redact.URL(v)
	return shown, shown != v
}
