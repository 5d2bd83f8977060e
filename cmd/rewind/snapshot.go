package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/cluster"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/snapshot"
	"github.com/rewind-backup/rewind/internal/source"
)

func newSnapshotCmd() *cobra.Command {
	var rf repoFlags
	var sourceIn *input
	var cf clusterFlags
	var include, exclude []string
	var parallel int
	var wait config.Duration
	cmd := &cobra.Command{
		Use:   "snapshot",
		Short: "Take a consistent snapshot of the source now",
		Long: `Copy the selected collections (documents as raw BSON, options, indexes, views,
users and roles) into the repository in parallel, consistent at the oplog
timestamp the copy ended at. If no agent is capturing the repository, the
snapshot captures the oplog range it was taken across itself, so it is
restorable alone; if an agent runs, it waits for the agent to store that range.

A sharded cluster (--source with a mongos, or --shard NAME=URI and
--config-server URI) gets a cluster snapshot: the balancer is stopped
through mongos (and re-enabled afterwards, whatever happens), every shard
and the config server are copied at once (--parallel bounds the whole
copy), the routing metadata is read from the config server, and the
snapshot is consistent at T, the latest of the shards' ends. Without
mongos the balancer is not stopped by rewind: stop it yourself.

Namespace patterns: db (or db.*) selects a database, db.coll one collection;
collection names may hold dots (db.a.b is collection "a.b" of "db"). The
admin, config and local databases and system.* collections (except system.js)
are never copied.`,
		Example: `  rewind snapshot --source 'mongodb://db1:27017/?replicaSet=rs0' --repo file:///var/lib/rewind
  rewind snapshot --source "$URI" --repo s3://backups/rewind --ns shop.* --exclude shop.sessions --parallel 8
  rewind snapshot --source 'mongodb://mongos1:27017/' --repo s3://backups/cluster`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			source, _, err := resolveSource(cmd, sourceIn, "")
			if err != nil {
				return err
			}
			in, err := cf.inputs(cmd, source)
			if err != nil {
				return err
			}
			if source == "" && len(in.Shards) == 0 && in.ConfigServer == "" {
				return usagef(cmd, "--source is required (or set REWIND_SOURCE)")
			}
			filter, err := snapshot.ParseFilter(include, exclude)
			var fe *snapshot.FilterError
			if errors.As(err, &fe) {
				return usagef(cmd, "%v", err)
			}
			if err != nil {
				return err
			}
			o := snapshot.Options{Filter: filter, Parallel: parallel, WaitTimeout: wait.Std(), Log: slog.Default()}
			return runSnapshot(cmd, &rf, in, o)
		},
	}
	rf.add(cmd)
	f := cmd.Flags()
	sourceIn = sourceInput.bind(cmd, "MongoDB connection string")
	cf.add(cmd)
	f.StringArrayVar(&include, "ns", nil, "copy only these namespaces (db, db.* or db.coll; repeatable); default all")
	f.StringArrayVar(&exclude, "exclude", nil, "skip these namespaces (same syntax; repeatable; wins over --ns)")
	countVar(cmd, &parallel, "parallel", snapshot.DefaultParallel, 1, "collections (or parts of a large one) copied at once")
	durationVar(cmd, &wait, "wait-timeout", config.Duration(snapshot.DefaultWaitTimeout), "how long to wait for a running agent to store the snapshot's oplog range (e.g. 90s, 10m, 1d)")
	return cmd
}

func runSnapshot(cmd *cobra.Command, rf *repoFlags, in cluster.Inputs, o snapshot.Options) error {
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := source.OpenDeployment(ctx, in)
	if err != nil {
		return err
	}
	defer closeWithin(func(ctx context.Context) error { d.Close(ctx); return nil })
	if d.Cluster != nil {
		return runClusterSnapshot(cmd, r.Repository, d, in.Router, o)
	}

	o.Progress = &snapshot.Progress{}
	var m repo.Manifest
	err = withProgress(cmd, o.Progress, o.Log, func() (err error) {
		m, err = snapshot.Take(ctx, d.Single, r.Repository, o)
		return err
	})
	if err != nil {
		return err
	}
	docs, size, _ := o.Progress.Counts()
	fmt.Fprintf(cmd.OutOrStdout(), "snapshot %s complete: %d collections, %d views, %d documents, %d bytes; consistent at %s (%s)\n",
		m.ID, len(m.Collections), len(m.Views), docs, size, m.End, m.End.Time().UTC().Format(time.RFC3339))
	return nil
}

// runClusterSnapshot takes a cluster snapshot of d; router is the mongos
// URI when the cluster was found through one (the balancer is then
// stopped through it), "" for shards given by hand.
func runClusterSnapshot(cmd *cobra.Command, r *repo.Repository, d *source.Deployment, router string, o snapshot.Options) error {
	ctx := cmd.Context()
	co := snapshot.ClusterOptions{Options: o}
	if router != "" {
		c, err := cluster.Client(router)
		if err != nil {
			return err
		}
		defer closeWithin(c.Disconnect)
		co.Router = snapshot.RouterCommandOf(c)
	}
	co.Progress = &snapshot.Progress{}
	var m repo.ClusterManifest
	err := withProgress(cmd, co.Progress, o.Log, func() (err error) {
		m, err = snapshot.TakeCluster(ctx, d, r, co)
		return err
	})
	if err != nil {
		return err
	}
	docs, size, _ := co.Progress.Counts()
	fmt.Fprintf(cmd.OutOrStdout(), "cluster snapshot %s complete: shards %s, %d documents, %d bytes, %d chunks of routing metadata, balancer %s; consistent at %s (%s)\n",
		m.ID, strings.Join(m.Shards(), ", "), docs, size, len(m.Routing.Chunks), m.Balancer, m.T, m.T.Time().UTC().Format(time.RFC3339))
	return nil
}

// progressEvery redraws a terminal line often, and logs sparingly.
