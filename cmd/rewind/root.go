package main

import (
	"github.com/spf13/cobra"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "rewind",
		Short: "Continuous backup and point-in-time restore for MongoDB",
		Long: `rewind tails a MongoDB replica set's oplog into a repository (a local
directory or an S3, GCS or Azure bucket), keeps consistent snapshots, and restores
a whole deployment, some databases or one collection to any second in the window.`,
		Example: `  rewind init --repo file:///var/lib/rewind
  rewind repo info --repo file:///var/lib/rewind`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args: func(cmd *cobra.Command, a []string) error {
			if len(a) > 0 {
				return usagef(cmd, "unknown command %q", a[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef(cmd, "%v", err)
	})
	addGlobalFlags(root)
	root.AddCommand(
		newVersionCmd(),
		newInitCmd(),
		newRepoCmd(),
		newAgentCmd(),
		newServerCmd(),
		newStatusCmd(),
		newSnapshotCmd(),
		newUnlockCmd(),
		newAuditCmd(),
		newListCmd(),
		newRestoreCmd(),
		newUndoCmd(),
		newOplogCmd(),
		newHistoryCmd(),
		newExportCmd(),
		newPruneCmd(),
		newVerifyCmd(),
		newChecksumCmd(),
		newDrillCmd(),
	)
	return root
}
