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

// statusJSON is `rewind status --json`: status.Overview. A replica set's
// one shard's fields are also at the top level; a sharded cluster's top
// level is the cluster's.
type statusJSON = status.Overview

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
			st, err := status.LoadOverview(cmd.Context(), r.Repository, "", time.Now())
			if err != nil {
				return err
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
	if c := st.Cluster; c != nil {
		printCluster(tw, st)
	}
	for _, s := range st.Shards {
		fmt.Fprintf(tw, "shard\t%s (%s)\n", s.Shard, strings.ReplaceAll(s.State, "_", " "))
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
		if s.CoveredThrough != nil && (s.LastDurable == nil || *s.CoveredThrough != *s.LastDurable) {
			fmt.Fprintf(tw, "covered through\t%d:%d (%s): the shard was idle since its last entry\n", s.CoveredThrough.T, s.CoveredThrough.I, s.CoveredThrough.Time)
		}
		if s.Error != "" {
			fmt.Fprintf(tw, "ERROR\t%s\n", s.Error)
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

// printCluster prints a sharded cluster's own lines, before its shards'.
func printCluster(tw io.Writer, st statusJSON) {
	c := st.Cluster
	fmt.Fprintf(tw, "cluster\tshards %s; config server %s\n", strings.Join(c.Shards, ", "), orUnknown(c.ConfigServer))
	if st.LastDurable != nil {
		fmt.Fprintf(tw, "last durable\t%d:%d (%s): every shard's oplog is complete through it\n", st.LastDurable.T, st.LastDurable.I, st.LastDurable.Time)
	} else {
		fmt.Fprintf(tw, "last durable\tnone: a shard has no oplog stored yet\n")
	}
	if c.TopologyChanged != nil {
		fmt.Fprintf(tw, "TOPOLOGY CHANGED\tat %s: shards were added or removed\n", c.TopologyChanged.UTC().Format(time.RFC3339))
	}
	for _, warn := range st.Warnings {
		fmt.Fprintf(tw, "WARNING\t%s\n", warn)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(name unknown)"
	}
	return s
}
