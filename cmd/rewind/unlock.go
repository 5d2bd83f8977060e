package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/repo"
)

func newUnlockCmd() *cobra.Command {
	var rf repoFlags
	var all bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove stale repository locks",
		Long: `Remove locks whose holder stopped refreshing them (crashed, killed, or cut off
from storage). With --all, remove every lock, live ones too: the holders'
next refresh fails and they stop writing. Use --all only when you know the
holders are gone.`,
		Example: `  rewind unlock --repo file:///var/lib/rewind
  rewind unlock --repo file:///var/lib/rewind --all`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			r, err := rf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			locks, err := r.ListLocks(cmd.Context())
			if err != nil {
				return err
			}
			n, err := r.BreakLocks(cmd.Context(), !all, repo.DefaultStaleAfter, time.Now())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "removed %d of %d locks\n", n, len(locks))
			return nil
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVar(&all, "all", false, "remove live locks too")
	return cmd
}
