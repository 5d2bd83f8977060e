package main

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/spf13/cobra"
)

func newRepoCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "repo",
		Short:   "Inspect a repository",
		Example: "  rewind repo info --repo file:///var/lib/rewind",
		Args:    args(cobra.NoArgs),
		RunE:    func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRepoInfoCmd())
	return cmd
}

// repoInfo is the JSON form of `rewind repo info`.
type repoInfo struct {
	URL         string    `json:"url"`
	ID          string    `json:"id"`
	Version     int       `json:"format_version"`
	Created     time.Time `json:"created"`
	Compression string    `json:"compression"`
	Level       string    `json:"zstd_level,omitempty"`
	Encrypted   bool      `json:"encrypted"`
	Recipient   string    `json:"recipient,omitempty"`
	Flavor      string    `json:"source_flavor,omitempty"`
	ReplicaSet  string    `json:"source_replica_set,omitempty"`
	CreatedBy   string    `json:"created_by,omitempty"`
	// ObjectLock is "on", "off", or "unsupported" (off, and the store
	// cannot lock objects); LockProblem says why not.
	ObjectLock  string `json:"object_lock"`
	LockMode    string `json:"object_lock_mode,omitempty"`
	LockDays    int    `json:"object_lock_days,omitempty"`
	LockProblem string `json:"object_lock_problem,omitempty"`
}

func newRepoInfoCmd() *cobra.Command {
	var rf repoFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "info",
		Short:   "Print a repository's configuration",
		Example: "  rewind repo info --repo s3://backups/rewind?region=eu-west-1 --json",
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			r, err := rf.open(cmd.Context())
			if err != nil {
				return err
			}
			defer r.Close()
			c := r.Config()
			info := repoInfo{URL: redact.URL(rf.url), ID: c.ID, Version: c.Version, Created: c.Created,
				Compression: c.Compression, Level: c.Level, Encrypted: c.Encrypted(), Recipient: c.Recipient,
				Flavor: c.Source.Flavor, ReplicaSet: c.Source.ReplicaSet, CreatedBy: c.Source.CreatedBy}
			if err := info.objectLock(cmd.Context(), r.Repository); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if asJSON {
				return printJSON(out, info)
			}
			tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
			fmt.Fprintf(tw, "repository\t%s\n", info.URL)
			fmt.Fprintf(tw, "id\t%s\n", info.ID)
			fmt.Fprintf(tw, "format version\t%d\n", info.Version)
			fmt.Fprintf(tw, "created\t%s\n", info.Created.Format(time.RFC3339))
			switch {
			case info.Compression == repo.CompressionZstd && info.Level == "":
				fmt.Fprintf(tw, "compression\tzstd, level %s (made before levels were recorded)\n", repo.LevelDefault)
			case info.Level != "":
				fmt.Fprintf(tw, "compression\t%s, level %s\n", info.Compression, info.Level)
			default:
				fmt.Fprintf(tw, "compression\t%s\n", info.Compression)
			}
			if info.Encrypted {
				fmt.Fprintf(tw, "encryption\tage, to %s\n", info.Recipient)
			} else {
				fmt.Fprintf(tw, "encryption\tnone\n")
			}
			if info.Flavor != "" {
				fmt.Fprintf(tw, "source\t%s %s\n", info.Flavor, info.ReplicaSet)
			}
			switch {
			case info.ObjectLock == "on" && info.LockProblem == "":
				fmt.Fprintf(tw, "object lock\t%s, every object retained %d days after it is written\n", info.LockMode, info.LockDays)
			case info.ObjectLock == "on":
				fmt.Fprintf(tw, "object lock\t%s, %d days, but %s: nothing can be written here\n", info.LockMode, info.LockDays, info.LockProblem)
			case info.ObjectLock == "unsupported":
				fmt.Fprintf(tw, "object lock\toff (unsupported: %s)\n", info.LockProblem)
			default:
				fmt.Fprintf(tw, "object lock\toff\n")
			}
			if info.CreatedBy != "" {
				fmt.Fprintf(tw, "created by\t%s\n", info.CreatedBy)
			}
			return tw.Flush()
		},
	}
	rf.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

// objectLock fills in the object lock fields from the config and the store.
func (info *repoInfo) objectLock(ctx context.Context, r *repo.Repository) error {
	st, err := r.ObjectLockStatus(ctx)
	if err != nil {
		return err
	}
	info.LockProblem = st.Problem
	switch {
	case st.Lock != nil:
		info.ObjectLock, info.LockMode, info.LockDays = "on", st.Lock.Mode, st.Lock.Days
	case st.Problem != "":
		info.ObjectLock = "unsupported"
	default:
		info.ObjectLock = "off"
	}
	return nil
}
