package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/redact"
)

func newDrillHistoryCmd() *cobra.Command {
	var rf repoFlags
	var shard string
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List the restore drills recorded in the repository, as evidence for auditors",
		Long: `history lists the drills the repository keeps (the newest 100, by rewind drill
and the agent's scheduled drills), newest first: when, the point, how it was
chosen, the verdict (exact, mismatch, failed, no-reference), what it was
compared with, the time it took and the RTO (restore seconds per GB), with a
summary of the verdicts. --json prints the whole report, each drill's phases
included: the document to hand an auditor (GET /api/v1/drills answers the
same). An encrypted repository's drill records need --identity.`,
		Example: `  rewind drill history --repo file:///var/lib/rewind
  rewind drill history --repo s3://backups/rewind --identity key.txt --json > drills-2026-11.json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			if limit < 0 {
				return usagef(cmd, "--limit %d: want 0 (all) or more", limit)
			}
			ctx := cmd.Context()
			r, err := rf.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			if shard == "" {
				shards, err := r.Shards(ctx)
				if err != nil {
					return err
				}
				if len(shards) == 0 {
					return fmt.Errorf("the repository holds nothing yet, so no drill either")
				}
				shard = shards[0]
			}
			rep, err := drill.LoadReport(ctx, r.Repository, redact.URL(rf.url), shard, limit, time.Now())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "STARTED\tPOINT\tCHOSEN\tVERDICT\tAGAINST\tSECONDS\tRTO s/GB\tPROBLEM")
			for _, d := range rep.Drills {
				point := "-"
				if d.Point != nil {
					point = d.Point.Time
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%.1f\t%.1f\t%s\n", d.Started.UTC().Format(time.RFC3339), point, d.Chosen,
					d.Verdict, d.Against, d.Seconds, d.RTOSecondsPerGB, d.Problem)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			s := rep.Summary
			fmt.Fprintf(cmd.OutOrStdout(), "%d drills: %d exact, %d mismatch, %d failed, %d without reference", s.Total, s.Exact, s.Mismatch, s.Failed, s.NoReference)
			if s.LastExact != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "; last exact %s", s.LastExact.UTC().Format(time.RFC3339))
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	cmd.Flags().StringVar(&shard, "shard", "", "the shard whose drills to list (default: the repository's first, a replica set's only one)")
	cmd.Flags().IntVar(&limit, "limit", 0, "list only the newest N drills (0: all the repository keeps)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON (for auditors)")
	return cmd
}
