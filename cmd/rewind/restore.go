package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/rewind-backup/rewind/internal/catalog"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
)

// restoreFlags are the flags of `rewind restore`.
type restoreFlags struct {
	target     string
	to         string
	include    []string
	rename     []string
	drop       bool
	withUsers  bool
	parallel   int
	dryRun     bool
	connectTTL time.Duration
}

func newRestoreCmd() *cobra.Command {
	var rf repoFlags
	var f restoreFlags
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a deployment, databases or collections to a point in time",
		Long: `restore loads the newest snapshot taken before the restore point into the target
deployment, replays the oplog from the snapshot's start up to the restore point,
then builds indexes (and, when asked, restores users and roles).

--to takes an RFC 3339 time (the state after every entry of that second), an
oplog timestamp SECONDS:INCREMENT (inclusive), or latest. It never overwrites
data: a target collection that exists and is not empty is an error unless --drop.`,
		Example: `  rewind restore --repo file:///var/lib/rewind --target mongodb://db2:27017 --to 2026-11-25T09:30:00Z
  rewind restore --repo ... --target ... --to latest --ns shop.orders --rename shop.orders=shop.orders_restored
  rewind restore --repo ... --target ... --to 1764063000:12 --ns 'shop.*' --rename shop=shop_0930 --dry-run`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runRestore(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.target, "target", "", "connection string of the deployment to restore into (required)")
	fl.StringVar(&f.to, "to", "", "restore point: RFC 3339 time, SECONDS:INCREMENT or latest (required)")
	fl.StringArrayVar(&f.include, "ns", nil, "restore only these namespaces (db, db.* or db.coll; repeatable); default all")
	fl.StringArrayVar(&f.rename, "rename", nil, "restore a database or collection under a new name: FROM=TO (shop=shop_0930, shop.orders=shop.orders_old; repeatable)")
	fl.BoolVar(&f.drop, "drop", false, "drop target collections that exist and are not empty (default: refuse)")
	fl.BoolVar(&f.withUsers, "with-users-and-roles", false, "also restore the snapshot's users and roles of the restored databases")
	fl.IntVar(&f.parallel, "parallel", 4, "snapshot objects loaded at once")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan (snapshot, objects and bytes to read, oplog range and entry count, target namespaces) and change nothing")
	fl.DurationVar(&f.connectTTL, "connect-timeout", 30*time.Second, "how long to wait for the target deployment")
	return cmd
}

// request checks the command line and turns it into a restore request.
func (f *restoreFlags) request(cmd *cobra.Command, rf *repoFlags) (restore.Request, error) {
	if err := rf.require(cmd); err != nil {
		return restore.Request{}, err
	}
	if f.to == "" {
		return restore.Request{}, usagef(cmd, "--to is required (a time, SECONDS:INCREMENT or latest)")
	}
	if f.target == "" && !f.dryRun {
		return restore.Request{}, usagef(cmd, "--target is required (the connection string to restore into)")
	}
	if f.parallel < 1 {
		return restore.Request{}, usagef(cmd, "--parallel %d: want at least 1", f.parallel)
	}
	when, err := restore.ParseWhen(f.to)
	if err != nil {
		return restore.Request{}, usagef(cmd, "%v", err)
	}
	rename := map[string]string{}
	for _, p := range f.rename {
		from, to, ok := strings.Cut(p, "=")
		if !ok || from == "" || to == "" {
			return restore.Request{}, usagef(cmd, "--rename %q: want FROM=TO, for example shop=shop_0930", p)
		}
		rename[from] = to
	}
	if _, err := restore.NewMapper(f.include, rename); err != nil {
		return restore.Request{}, usagef(cmd, "%v", err)
	}
	return restore.Request{To: when, Include: f.include, Rename: rename, WithUsersAndRoles: f.withUsers}, nil
}

func runRestore(cmd *cobra.Command, rf *repoFlags, f *restoreFlags) error {
	req, err := f.request(cmd, rf)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "restore", Wait: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("lock repository for reading: %w", err)
	}
	ctx, release := lock.Hold(ctx)
	defer release()

	cat, err := catalog.Load(ctx, r.Repository)
	if err != nil {
		return err
	}
	plan, err := restore.Build(cat, req)
	if err != nil {
		return err
	}
	if plan.Flavor == "" {
		// Neither the timeline record nor the manifest says: fall back to
		// the flavor the repository was initialized for.
		plan.Flavor = r.Config().Source.Flavor
	}
	if err := restore.Resolve(ctx, r.Repository, &plan); err != nil {
		return err
	}
	if f.dryRun {
		n, err := restore.CountEntries(ctx, r.Repository, plan)
		if err != nil {
			return err
		}
		target, err := dryRunTarget(cmd, plan, f)
		if err != nil {
			return err
		}
		return printPlan(cmd.OutOrStdout(), plan, n, true, target)
	}
	client, err := connectTarget(ctx, f.target, f.connectTTL)
	if err != nil {
		return err
	}
	defer client.Disconnect(context.Background())
	if err := printPlan(cmd.OutOrStdout(), plan, -1, false, ""); err != nil {
		return err
	}
	rep, err := executeWithProgress(ctx, cmd, r.Repository, client, plan, f)
	if err != nil {
		return repo.LostError(ctx, err)
	}
	return printReport(cmd.OutOrStdout(), rep)
}

// dryRunTarget, when --target is given, says which target namespaces
// already hold data (read only).
func dryRunTarget(cmd *cobra.Command, plan restore.Plan, f *restoreFlags) (string, error) {
	if f.target == "" {
		return "", nil
	}
	client, err := connectTarget(cmd.Context(), f.target, f.connectTTL)
	if err != nil {
		return "", err
	}
	defer client.Disconnect(context.Background())
	busy, err := restore.Busy(cmd.Context(), client, plan)
	if err != nil {
		return "", err
	}
	if len(busy) == 0 {
		return "every target namespace is absent or empty", nil
	}
	verb := "the restore would refuse them (add --drop to replace them, or --rename)"
	if f.drop {
		verb = "--drop would drop them first"
	}
	names := make([]string, len(busy))
	for i, ns := range busy {
		names[i] = ns.String()
	}
	return fmt.Sprintf("%s already hold data: %s", strings.Join(names, ", "), verb), nil
}

func executeWithProgress(ctx context.Context, cmd *cobra.Command, r *repo.Repository, client *mongo.Client, plan restore.Plan, f *restoreFlags) (restore.Report, error) {
	o := restore.Options{Parallel: f.parallel, Drop: f.drop, Progress: &restore.Progress{}, Log: slog.Default()}
	var rep restore.Report
	err := withProgress(cmd, o.Progress, o.Log, func() (err error) {
		rep, err = restore.Execute(ctx, r, client, plan, o)
		return err
	})
	return rep, err
}

// connectTarget connects to the target deployment and checks it answers.
func connectTarget(ctx context.Context, uri string, timeout time.Duration) (*mongo.Client, error) {
	client, err := mongo.Connect(options.Client().ApplyURI(uri).SetServerSelectionTimeout(timeout))
	if err != nil {
		return nil, fmt.Errorf("connect to target: %w; check --target (a mongodb:// connection string)", err)
	}
	if err := client.Ping(ctx, nil); err != nil {
		client.Disconnect(context.Background())
		return nil, fmt.Errorf("connect to target: %w; check --target and that the deployment is up", err)
	}
	return client, nil
}

func printPlan(w io.Writer, p restore.Plan, entries int64, dry bool, target string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if dry {
		fmt.Fprintln(tw, "Restore plan (dry run: nothing is changed)")
	} else {
		fmt.Fprintln(tw, "Restore plan")
	}
	fmt.Fprintf(tw, "  restore point\t%s (replay entries up to %s)\n", p.Request, p.Target)
	fmt.Fprintf(tw, "  snapshot\t%s, consistent at %s (%s), copy started at %s\n", p.Snapshot.ID,
		p.Snapshot.End.Time().Format(time.RFC3339), p.Snapshot.End, p.Snapshot.Start)
	fmt.Fprintf(tw, "  snapshot objects\t%d chunks, %s, %d documents\n", p.Chunks, humanBytes(p.ChunkBytes), p.Documents)
	tl := p.Window.Timeline
	if tl == "" {
		tl = "none needed"
	}
	fmt.Fprintf(tw, "  oplog\t%s .. %s on timeline %s (flavor %s): %d segments, %s\n", p.ReplayFrom, p.Target, tl, orDash(p.Flavor), len(p.Segments), humanBytes(p.SegmentBytes))
	if entries >= 0 {
		fmt.Fprintf(tw, "  oplog entries\t%d\n", entries)
	}
	fmt.Fprintln(tw, "  namespaces\tSOURCE\tTARGET\tDOCUMENTS\tCHUNKS")
	for _, c := range p.Collections {
		fmt.Fprintf(tw, "\t%s\t%s\t%d\t%d\n", c.Source, c.Target, c.Manifest.Count, len(c.Manifest.Chunks))
	}
	for _, v := range p.Views {
		fmt.Fprintf(tw, "\t%s\t%s\tview\t-\n", v.Source, v.Target)
	}
	if len(p.Users)+len(p.Roles) > 0 {
		fmt.Fprintf(tw, "  users and roles\t%d users, %d roles\n", len(p.Users), len(p.Roles))
	}
	if target != "" {
		fmt.Fprintf(tw, "  target\t%s\n", target)
	}
	return tw.Flush()
}

func printReport(w io.Writer, rep restore.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	last := "none (no entry after the snapshot)"
	if !rep.LastApplied.IsZero() {
		last = fmt.Sprintf("%s (%s)", rep.LastApplied.Time().Format(time.RFC3339), rep.LastApplied)
	}
	fmt.Fprintf(tw, "Restored from snapshot %s in %s\n", rep.Snapshot, rep.Duration.Round(time.Millisecond))
	fmt.Fprintf(tw, "  documents loaded\t%d\n", rep.Documents)
	fmt.Fprintf(tw, "  oplog entries\t%d replayed (%d inserts, %d updates, %d deletes, %d commands, %d skipped); last %s\n",
		rep.Entries, rep.Replay.Inserts, rep.Replay.Updates, rep.Replay.Deletes, rep.Replay.Commands, rep.Replay.Skipped, last)
	fmt.Fprintf(tw, "  bytes read\t%s\n", humanBytes(rep.Bytes))
	fmt.Fprintf(tw, "  indexes built\t%d; views %d; users %d; roles %d\n", rep.Indexes, rep.Views, rep.Users, rep.Roles)
	phases := make([]string, len(rep.Phases))
	for i, ph := range rep.Phases {
		phases[i] = fmt.Sprintf("%s %s", ph.Name, ph.Duration.Round(time.Millisecond))
	}
	fmt.Fprintf(tw, "  time spent\t%s\n", strings.Join(phases, ", "))
	fmt.Fprintln(tw, "  TARGET\tSOURCE\tLOADED\tDOCUMENTS NOW")
	for _, n := range rep.Namespaces {
		fmt.Fprintf(tw, "  %s\t%s\t%d\t%d\n", n.Target, n.Source, n.Loaded, n.Final)
	}
	return tw.Flush()
}
