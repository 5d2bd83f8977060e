package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/status"
)

// listJSON is the JSON form of `rewind list`.
type listJSON struct {
	// Cluster is set for a sharded cluster's repository: its windows.
	Cluster *clusterListJSON `json:"cluster,omitempty"`
	Shards  []shardListJSON  `json:"shards"`
	// Clusters are the cluster snapshots of a sharded cluster's
	// repository (absent for a replica set's).
	Clusters []clusterSnapshotJSON `json:"clusters,omitempty"`
}

// clusterSnapshotJSON is one cluster snapshot: consistent at T, with one
// part per shard (each listed under its shard's snapshots with the same id).
type clusterSnapshotJSON struct {
	ID       string     `json:"id"`
	T        *status.TS `json:"t"`
	Shards   []string   `json:"shards"`
	Balancer string     `json:"balancer"`
	Chunks   int        `json:"routing_chunks"`
}

// clusterListJSON is a cluster's restore windows: the points every shard
// can be restored to (catalog.ClusterWindows), never past the least
// covered-through time. Each window has no snapshot or timeline of its own.
type clusterListJSON struct {
	Shards  []string        `json:"shards"`
	Windows []status.Window `json:"windows"`
}

// shardListJSON is one shard's part, shared with GET /api/v1/timeline.
type shardListJSON = status.ShardList

func newListCmd() *cobra.Command {
	var rf repoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List restore windows, gaps and snapshots",
		Long: `list shows what the repository can restore: the restore windows (every oplog
timestamp from a snapshot's end to the last entry of the unbroken timeline after
it), the gaps where entries were lost, the snapshots and the timelines.
Reading snapshot manifests of an encrypted repository needs --identity.`,
		Example: `  rewind list --repo file:///var/lib/rewind
  rewind list --repo s3://backups/rewind --identity key.txt --json`,
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
			cat, err := catalog.Load(cmd.Context(), r.Repository)
			if err != nil {
				return err
			}
			out := listOf(cat)
			if out.Clusters, err = clustersOf(cmd.Context(), r.Repository); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), out)
			}
			return printList(cmd.OutOrStdout(), out)
		},
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func listOf(cat catalog.Catalog) listJSON {
	out := listJSON{Shards: status.ListShards(cat)}
	if len(cat.Cluster) > 0 {
		out.Cluster = &clusterListJSON{Shards: cat.Cluster, Windows: status.Windows(cat.ClusterWindows())}
	}
	return out
}

// clustersOf lists the repository's cluster snapshots, oldest first.
func clustersOf(ctx context.Context, r *repo.Repository) ([]clusterSnapshotJSON, error) {
	ids, err := r.ListClusterSnapshots(ctx)
	if err != nil {
		return nil, err
	}
	var out []clusterSnapshotJSON
	for _, id := range ids {
		m, err := r.ReadClusterManifest(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, clusterSnapshotJSON{ID: m.ID, T: status.ToTS(m.T), Shards: m.Shards(), Balancer: m.Balancer, Chunks: len(m.Routing.Chunks)})
	}
	return out, nil
}

// point formats a timestamp as both forms --to accepts.
func point(ts *status.TS) string {
	if ts == nil {
		return "-"
	}
	return fmt.Sprintf("%s (%s)", ts.Time, optime.Timestamp{T: ts.T, I: ts.I})
}

func printList(w io.Writer, l listJSON) error {
	if len(l.Shards) == 0 {
		fmt.Fprintln(w, "The repository is empty: no oplog captured and no snapshot yet.")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if c := l.Cluster; c != nil {
		fmt.Fprintf(tw, "cluster (shards %s)\n\nCLUSTER RESTORE WINDOWS (every shard restorable; up to the least covered-through time)\n", strings.Join(c.Shards, ", "))
		if len(c.Windows) == 0 {
			fmt.Fprintln(tw, "  none: every shard needs a window (a snapshot of it and its oplog after it), and the windows must overlap")
		} else {
			fmt.Fprintln(tw, "  FROM\tTO")
		}
		for _, win := range c.Windows {
			fmt.Fprintf(tw, "  %s\t%s\n", point(win.From), point(win.To))
		}
		fmt.Fprintln(tw)
	}
	for _, s := range l.Shards {
		fmt.Fprintf(tw, "shard %s\n", s.Shard)
		if s.CoveredThrough != nil {
			fmt.Fprintf(tw, "covered through %s\n", point(s.CoveredThrough))
		}
		fmt.Fprintf(tw, "\nRESTORE WINDOWS\n")
		if len(s.Windows) == 0 {
			fmt.Fprintln(tw, "  none: a window needs a snapshot and the oplog from its start")
		} else {
			fmt.Fprintln(tw, "  FROM\tTO\tSNAPSHOT\tTIMELINE")
		}
		for _, win := range s.Windows {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", point(win.From), point(win.To), win.Snapshot, orDash(win.Timeline))
		}
		if len(s.Gaps) > 0 {
			fmt.Fprintf(tw, "\nGAPS (entries lost: nothing inside is restorable)\n  LAST BEFORE\tFIRST AFTER\tDETECTED\n")
			for _, g := range s.Gaps {
				fmt.Fprintf(tw, "  %s\t%s\t%s\n", point(g.Before), point(g.After), g.Detected.Format(time.RFC3339))
			}
		}
		fmt.Fprintf(tw, "\nSNAPSHOTS\n")
		if len(s.Snapshots) == 0 {
			fmt.Fprintln(tw, "  none")
		} else {
			fmt.Fprintln(tw, "  ID\tCONSISTENT AT\tCOLLECTIONS\tDOCUMENTS\tSIZE\tCHUNKS")
		}
		for _, sn := range s.Snapshots {
			fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\t%s\t%d\n", sn.ID, point(sn.End), sn.Collections, sn.Documents, humanBytes(sn.Bytes), sn.Chunks)
		}
		fmt.Fprintf(tw, "\nTIMELINES\n  ID\tFLAVOR\tFIRST\tLAST\tSEGMENTS\tSTORED\n")
		for _, t := range s.Timelines {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%s\n", t.ID, orDash(t.Flavor), point(t.First), point(t.Last), t.Segments, humanBytes(t.Bytes))
		}
		fmt.Fprintln(tw)
	}
	if len(l.Clusters) > 0 {
		fmt.Fprintf(tw, "CLUSTER SNAPSHOTS (each shard's part is listed under its shard with the same id)\n  ID\tCONSISTENT AT\tSHARDS\tBALANCER\n")
		for _, c := range l.Clusters {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.ID, point(c.T), strings.Join(c.Shards, ","), c.Balancer)
		}
	}
	return tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func humanBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// plural says "1 segment", "2 segments".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
