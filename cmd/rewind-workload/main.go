// Command rewind-workload writes a deterministic, seeded workload to a MongoDB
// deployment while recording marks (oplog timestamp + state hashes), and
// compares a restored deployment against a mark, so a person can check a
// restore by hand. See docs/TESTING.md.
//
// Exit codes: 0 ok, 1 failure, 2 usage error, 3 the deployment differs from the mark.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/oracle"
)

const (
	exitOK       = 0
	exitFailure  = 1
	exitUsage    = 2
	exitMismatch = 3
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmd := newRootCmd()
	cmd.SetArgs(args)
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "rewind-workload: %s\n", err)
	var m *oracle.Mismatch
	var ue usageError
	switch {
	case errors.As(err, &m):
		return exitMismatch
	case errors.As(err, &ue):
		return exitUsage
	}
	return exitFailure
}

// usageError marks errors in how the command was called.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func newRootCmd() *cobra.Command {
	var o runOptions
	root := &cobra.Command{
		Use:   "rewind-workload --uri URI (--ops N | --duration D) [flags]",
		Short: "Write a deterministic workload to MongoDB and record restore marks",
		Long: `rewind-workload writes seeded inserts, updates, replacements and deletes
across several databases and collections (odd names, every BSON type the server
accepts). The same seed always writes the same operations. With --marks it
records, every few batches, the oplog timestamp and a hash of every collection:
"compare" then checks a restore to that timestamp.

It drops and recreates the databases under --prefix first.`,
		Example: `  rewind-workload --uri 'mongodb://127.0.0.1:27017/?directConnection=true' --seed 1 --ops 5000 --marks marks.json
  rewind-workload compare --uri 'mongodb://127.0.0.1:27018/?directConnection=true' --marks marks.json --mark 3`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runWorkload(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	addRunFlags(root, &o)
	root.AddCommand(newCompareCmd(), newMarkCmd(), newDropCmd())
	return root
}

func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usagef("unexpected argument %q for %q (see --help)", args[0], cmd.CommandPath())
	}
	return nil
}
