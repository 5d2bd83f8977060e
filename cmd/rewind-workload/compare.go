package main

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/workload"
)

func newCompareCmd() *cobra.Command {
	var (
		uri, marks string
		mark       int
		ns, rename []string
	)
	cmd := &cobra.Command{
		Use:   "compare --uri URI --marks FILE [--mark N] [--ns DB[.COLL]]... [--rename FROM=TO]...",
		Short: "Check a (restored) deployment against a recorded mark",
		Long: `compare hashes the collections of the deployment at --uri and checks them
against mark N of the marks file (default: the last one). It prints the first
document that differs, with both versions, and exits with 3 if anything does.

--ns limits the check to databases (db, db.*) or collections (db.coll);
--rename maps a source database or collection to its name in the target.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			all, err := oracle.LoadMarks(marks)
			if err != nil {
				return err
			}
			if mark == 0 {
				mark = len(all)
			}
			if mark < 1 || mark > len(all) {
				return usagef("--mark %d: the file has marks 1 to %d", mark, len(all))
			}
			names, err := oracle.ParseRename(rename)
			if err != nil {
				return usageError{err}
			}
			client, err := connect(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer client.Disconnect(cmd.Context())
			m := all[mark-1]
			start := time.Now()
			if err := oracle.Compare(cmd.Context(), client, m, oracle.Filter{Include: ns, Rename: names}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "deployment matches mark %d (ts %s, %d collections) in %s\n",
				mark, m.TS, len(m.State), time.Since(start).Round(time.Millisecond))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&uri, "uri", "", "connection string of the deployment to check (required)")
	f.StringVar(&marks, "marks", "", "marks file written by rewind-workload --marks (required)")
	f.IntVar(&mark, "mark", 0, "mark number (default: the last)")
	f.StringArrayVar(&ns, "ns", nil, "check only this db, db.* or db.coll (repeatable)")
	f.StringArrayVar(&rename, "rename", nil, "FROM=TO: the source db or db.coll has this name in the target (repeatable)")
	return cmd
}

// newMarkCmd records one mark of a live deployment, to compare a restore of
// it later.
func newMarkCmd() *cobra.Command {
	var (
		uri, marks string
		ns         []string
	)
	cmd := &cobra.Command{
		Use:   "mark --uri URI --marks FILE [--ns DB[.COLL]]...",
		Short: "Append a mark of the deployment as it is now to a marks file",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if marks == "" {
				return usagef("--marks is required")
			}
			existing, err := oracle.LoadMarks(marks)
			if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			client, err := connect(cmd.Context(), uri)
			if err != nil {
				return err
			}
			defer client.Disconnect(cmd.Context())
			rec := &oracle.Recorder{Client: client, Filter: oracle.Filter{Include: ns}, Marks: existing}
			m, err := rec.Record(cmd.Context(), workload.Batch{})
			if err != nil {
				return err
			}
			if err := oracle.SaveMarks(marks, rec.Marks); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mark %d: ts %s, %d collections\n", m.N, m.TS, len(m.State))
			return nil
		},
	}
	cmd.Flags().StringVar(&uri, "uri", "", "connection string (required)")
	cmd.Flags().StringVar(&marks, "marks", "", "marks file to append to (required)")
	cmd.Flags().StringArrayVar(&ns, "ns", nil, "record only this db, db.* or db.coll (repeatable)")
	return cmd
}
