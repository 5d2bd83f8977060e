package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/redact"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/source"
	"github.com/rewind-backup/rewind/internal/storage"
)

func newInitCmd() *cobra.Command {
	var rf repoFlags
	var sourceIn *input
	var cf clusterFlags
	var recipient, compression, lockMode string
	var lockDays int
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a repository",
		Long: `Create a new, empty repository at --repo. With --recipient (an age public key)
every object written later is encrypted: writers need only that public key,
restores need the matching identity (--identity or REWIND_IDENTITY).
With --source the repository records which deployment it backs up (its flavor,
replica set name, and the set's id when the user may read it: clusterMonitor),
and an agent or snapshot pointed at another replica set is refused. With or
without it, capture refuses a source whose oplog does not continue the one the
repository holds: it reaches back before the repository's newest entry but does
not hold it. (A deployment created after that entry looks like a rolled-over
oplog: capture records a gap and needs a new snapshot.)
For a sharded cluster (--source with a mongos, or --shard NAME=URI and
--config-server URI) it records the shards' names and replica sets and the
config server's; a shard of another cluster is then refused.

--compression sets the zstd level every data object is written with: fastest
(the default) writes fastest, better stores less for more CPU; every level
reads back equally fast (docs/PERFORMANCE.md has the measured speeds and sizes).

--object-lock DAYS makes the backups immutable (S3 only): every object is
written with an S3 Object Lock retention of DAYS days, so that nobody, not
even with the repository's own credentials, can delete or overwrite it
before then; reads skip delete markers and newer versions put over an
object. The setting is recorded in the repository: every later writer
applies it. The bucket must have been created with Object Lock enabled.
--object-lock-mode compliance (the default) cannot be lifted by anyone;
governance can be bypassed by a principal allowed s3:BypassGovernanceRetention.`,
		Example: `  rewind init --repo file:///var/lib/rewind
  rewind init --repo file:///var/lib/rewind --compression better
  rewind init --repo s3://backups/rewind?region=eu-west-1 --source mongodb://db1/?replicaSet=rs0 \
      --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p
  rewind init --repo file:///var/lib/rewind --source 'mongodb://backup:PW@mongos1:27017/?authSource=admin'
  rewind init --repo s3://backups-locked/rewind?region=eu-west-1 --object-lock 30`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			comp, level, err := repo.ParseCompression(compression)
			if err != nil {
				return usagef(cmd, "--compression %q is not one of %s, %s or %s", compression,
					strings.Join(repo.Levels, ", "), repo.CompressionZstd, repo.CompressionNone)
			}
			lock, err := objectLockFlags(cmd, lockDays, lockMode)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			var src repo.Source
			uri, _, err := resolveSource(cmd, sourceIn, "")
			if err != nil {
				return err
			}
			in, err := cf.inputs(cmd, uri)
			if err != nil {
				return err
			}
			if uri != "" || len(in.Shards) > 0 || in.ConfigServer != "" {
				d, err := source.OpenDeployment(ctx, in)
				if err != nil {
					return err
				}
				src = d.Record()
				d.Close(ctx)
			}
			host, _ := os.Hostname()
			src.CreatedBy = fmt.Sprintf("rewind %s on %s", version, host)
			store, err := storage.Open(ctx, rf.url)
			if err != nil {
				return err
			}
			defer store.Close()
			r, err := repo.Init(ctx, store, repo.InitOptions{Location: redact.URL(rf.url),
				Compression: comp, Level: level, Recipient: recipient, Source: src, ObjectLock: lock})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created repository %s at %s\n", r.Config().ID, redact.URL(rf.url))
			if lock != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "object lock: %s, every object retained %d days after it is written\n", lock.Mode, lock.Days)
			}
			return nil
		},
	}
	rf.add(cmd)
	sourceIn = sourceInput.bind(cmd, "MongoDB connection string of the deployment this repository backs up: a replica set or a mongos (optional)")
	cf.add(cmd)
	cmd.Flags().StringVar(&recipient, "recipient", "", "age public key (age1...) to encrypt every object to")
	cmd.Flags().StringVar(&compression, "compression", repo.DefaultLevel,
		"zstd level of data objects: "+strings.Join(repo.Levels, ", ")+" (zstd is "+repo.DefaultLevel+"), or none")
	cmd.Flags().IntVar(&lockDays, "object-lock", 0, "retain every object DAYS days with S3 Object Lock (S3 buckets with Object Lock only)")
	cmd.Flags().StringVar(&lockMode, "object-lock-mode", "compliance", "Object Lock mode: compliance (nobody can lift it) or governance")
	return cmd
}

// objectLockFlags reads --object-lock and --object-lock-mode: nil when
// --object-lock is not given.
func objectLockFlags(cmd *cobra.Command, days int, mode string) (*repo.ObjectLock, error) {
	if !cmd.Flags().Changed("object-lock") {
		if cmd.Flags().Changed("object-lock-mode") {
			return nil, usagef(cmd, "--object-lock-mode needs --object-lock DAYS")
		}
		return nil, nil
	}
	if days < 1 || days > storage.MaxLockDays {
		return nil, usagef(cmd, "--object-lock %d: want a number of days from 1 to %d", days, storage.MaxLockDays)
	}
	m := strings.ToUpper(mode)
	if m != storage.LockCompliance && m != storage.LockGovernance {
		return nil, usagef(cmd, "--object-lock-mode %q: want compliance or governance", mode)
	}
	return &repo.ObjectLock{Mode: m, Days: days}, nil
}
