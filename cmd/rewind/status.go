package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/status"
)

// statusJSON is `rewind status --json`. The first shard's fields are also at
// the top level, since a replica set has only one.
type statusJSON struct {
	status.Report
	Shards []status.Report `json:"shards"`
}

func newStatusCmd() *cobra.Command {
	var rf repoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show capture status: newest durable timestamp, lag, timelines, gaps",
		Example: `  rewind status --repo file:///var/lib/rewind
  rewind status --repo file:///var/lib/rewind --json | jq .last_durable`,
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
			shards, err := r.Shards(cmd.Context())
			if err != nil {
				return err
			}
			var st statusJSON
			st.Shards = []status.Report{}
			for _, sh := range shards {
				s, err := status.Load(cmd.Context(), r.Repository, sh, time.Now())
				if err != nil {
					return err
				}
				st.Shards = append(st.Shards, s)
			}
			if len(st.Shards) > 0 {
				st.Report = st.Shards[0]
			} else {
				st.Report = status.Empty()
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			return printStatus(cmd.OutOrStdout(), st)
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func printStatus(w io.Writer, st statusJSON) error {
	if len(st.Shards) == 0 {
		fmt.Fprintln(w, "nothing stored yet: no snapshot, no oplog and no agent heartbeat; start `rewind agent` for this repository")
		for _, warn := range st.Warnings {
			fmt.Fprintf(w, "WARNING: %s\n", warn)
		}
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range st.Shards {
		fmt.Fprintf(tw, "shard\t%s\n", s.Shard)
		if s.LastDurable != nil {
			fmt.Fprintf(tw, "last durable\t%d:%d (%s)\n", s.LastDurable.T, s.LastDurable.I, s.LastDurable.Time)
		} else {
			fmt.Fprintf(tw, "last durable\tnone: no oplog segment stored yet\n")
		}
		switch {
		case s.Agent == nil:
			fmt.Fprintf(tw, "agent\tno heartbeat: no agent has run for this shard\n")
		case s.Agent.Alive:
			fmt.Fprintf(tw, "agent\trunning on %s (pid %d), lag %.0fs\n", s.Agent.Host, s.Agent.PID, s.Agent.LagSeconds)
		default:
			fmt.Fprintf(tw, "agent\tNOT RUNNING: last heartbeat from %s (pid %d) at %s\n", s.Agent.Host, s.Agent.PID, s.Agent.Updated.Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "segments\t%d (%d bytes)\n", s.Segments, s.Bytes)
		fmt.Fprintf(tw, "snapshots\t%d\n", s.Snapshots)
		if d := s.LastDrill; d != nil {
			fmt.Fprintf(tw, "last drill\t%s at %s: %s against %s in %.1fs (RTO %.1f s/GB)\n", strings.ToUpper(d.Verdict),
				d.Started.Format(time.RFC3339), d.Chosen, orNothing(d.Against), d.Seconds, d.RTOSecondsPerGB)
		}
		for _, tl := range s.Timelines {
			fmt.Fprintf(tw, "timeline %s\t%s .. %s, %s\n", tl.ID, tl.First.Time, tl.Last.Time, plural(tl.Segments, "segment", "segments"))
		}
		for _, g := range s.Gaps {
			fmt.Fprintf(tw, "GAP\tentries lost after %d:%d (%s) until %d:%d (%s)\n", g.Before.T, g.Before.I, g.Before.Time, g.After.T, g.After.I, g.After.Time)
		}
		for _, warn := range s.Warnings {
			fmt.Fprintf(tw, "WARNING\t%s\n", warn)
		}
	}
	return tw.Flush()
}

func orNothing(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}
