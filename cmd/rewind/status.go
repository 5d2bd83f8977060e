package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
)

// tsJSON is a timestamp as scripts read it.
type tsJSON struct {
	T    uint32 `json:"t"`
	I    uint32 `json:"i"`
	Time string `json:"time"`
}

func toTSJSON(ts optime.Timestamp) *tsJSON {
	if ts.IsZero() {
		return nil
	}
	return &tsJSON{T: ts.T, I: ts.I, Time: ts.Time().Format(time.RFC3339)}
}

type timelineJSON struct {
	ID       string  `json:"id"`
	Flavor   string  `json:"flavor,omitempty"`
	First    *tsJSON `json:"first"`
	Last     *tsJSON `json:"last"`
	Segments int     `json:"segments"`
	Bytes    int64   `json:"bytes"`
}

type gapJSON struct {
	Before   *tsJSON   `json:"before"`
	After    *tsJSON   `json:"after"`
	Detected time.Time `json:"detected"`
}

type agentJSON struct {
	Host       string    `json:"host"`
	PID        int       `json:"pid"`
	Started    time.Time `json:"started"`
	Updated    time.Time `json:"updated"`
	Alive      bool      `json:"alive"`
	LagSeconds float64   `json:"lag_seconds"`
}

type shardStatus struct {
	Shard       string         `json:"shard"`
	LastDurable *tsJSON        `json:"last_durable"`
	LagSeconds  *float64       `json:"lag_seconds"`
	Segments    int            `json:"segments"`
	Bytes       int64          `json:"bytes"`
	Timelines   []timelineJSON `json:"timelines"`
	Gaps        []gapJSON      `json:"gaps"`
	Agent       *agentJSON     `json:"agent"`
}

// statusJSON is `rewind status --json`. The first shard's fields are also at
// the top level, since a replica set has only one.
type statusJSON struct {
	shardStatus
	Shards []shardStatus `json:"shards"`
}

// heartbeatAliveFor is how old a heartbeat may be for its agent to count as alive.
const heartbeatAliveFor = 30 * time.Second

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
			r, err := rf.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer r.Close()
			shards, err := r.Shards(cmd.Context())
			if err != nil {
				return err
			}
			var st statusJSON
			st.Shards = []shardStatus{}
			for _, sh := range shards {
				s, err := loadShardStatus(cmd, r.Repository, sh)
				if err != nil {
					return err
				}
				st.Shards = append(st.Shards, s)
			}
			if len(st.Shards) > 0 {
				st.shardStatus = st.Shards[0]
			} else {
				st.Timelines, st.Gaps = []timelineJSON{}, []gapJSON{}
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

func loadShardStatus(cmd *cobra.Command, r *repo.Repository, shard string) (shardStatus, error) {
	s := shardStatus{Shard: shard, Timelines: []timelineJSON{}, Gaps: []gapJSON{}}
	h, err := r.History(cmd.Context(), shard)
	if err != nil {
		return s, err
	}
	for _, tl := range h.Timelines {
		tj := timelineJSON{ID: tl.ID, First: toTSJSON(tl.First), Last: toTSJSON(tl.Last), Segments: len(tl.Segments)}
		if tl.Info != nil {
			tj.Flavor = tl.Info.Flavor
		}
		for _, seg := range tl.Segments {
			tj.Bytes += seg.Size
		}
		s.Segments += tj.Segments
		s.Bytes += tj.Bytes
		s.Timelines = append(s.Timelines, tj)
		s.LastDurable = tj.Last
	}
	for _, g := range h.Gaps {
		s.Gaps = append(s.Gaps, gapJSON{Before: toTSJSON(g.Before), After: toTSJSON(g.After), Detected: g.Detected})
	}
	hb, err := r.ReadHeartbeat(cmd.Context(), shard)
	if err == nil {
		alive := time.Since(hb.Updated) < heartbeatAliveFor
		s.Agent = &agentJSON{Host: hb.Host, PID: hb.PID, Started: hb.Started, Updated: hb.Updated,
			Alive: alive, LagSeconds: hb.Lag.Seconds()}
		if alive {
			lag := hb.Lag.Seconds()
			s.LagSeconds = &lag
		}
	}
	return s, nil
}

func printStatus(w io.Writer, st statusJSON) error {
	if len(st.Shards) == 0 {
		fmt.Fprintln(w, "no oplog captured yet: start `rewind agent` for this repository")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, s := range st.Shards {
		fmt.Fprintf(tw, "shard\t%s\n", s.Shard)
		if s.LastDurable != nil {
			fmt.Fprintf(tw, "last durable\t%d:%d (%s)\n", s.LastDurable.T, s.LastDurable.I, s.LastDurable.Time)
		}
		switch {
		case s.Agent == nil:
			fmt.Fprintf(tw, "agent\tnone has run\n")
		case s.Agent.Alive:
			fmt.Fprintf(tw, "agent\trunning on %s (pid %d), lag %.0fs\n", s.Agent.Host, s.Agent.PID, s.Agent.LagSeconds)
		default:
			fmt.Fprintf(tw, "agent\tNOT RUNNING: last heartbeat from %s (pid %d) at %s\n", s.Agent.Host, s.Agent.PID, s.Agent.Updated.Format(time.RFC3339))
		}
		fmt.Fprintf(tw, "segments\t%d (%d bytes)\n", s.Segments, s.Bytes)
		for _, tl := range s.Timelines {
			fmt.Fprintf(tw, "timeline %s\t%s .. %s, %d segments\n", tl.ID, tl.First.Time, tl.Last.Time, tl.Segments)
		}
		for _, g := range s.Gaps {
			fmt.Fprintf(tw, "GAP\tentries lost after %d:%d (%s) until %d:%d (%s)\n", g.Before.T, g.Before.I, g.Before.Time, g.After.T, g.After.I, g.After.Time)
		}
	}
	return tw.Flush()
}
