package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/checksum"
	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/restore"
)

// restoreFlags are the flags of `rewind restore`: the restore.Request, plus
// the two that need the command line's own syntax first.
type restoreFlags struct {
	req    restore.Request
	to     string   // parsed by restore.ParseWhen
	rename []string // FROM=TO pairs
	asJSON bool     // print the result as the API answers it
	// targetFile is --target-file, a file holding --target.
	targetFile string
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
oplog timestamp SECONDS:INCREMENT (inclusive) as rewind list shows them, or
latest. A bare clock time (09:30) is refused: give the date and zone too.

Before it writes anything, restore looks at every target namespace it will
write, those the oplog creates after the snapshot included: one that holds
documents, is a view, or has options or indexes the backup lacks is in the way.
Without --drop the restore then refuses and changes nothing; with --drop each
one is dropped and re-created as the backup has it. --dry-run --target says the
same without writing.

--filter restores only the documents that match a MongoDB query as of --to. The
query is evaluated by the target's server: the restore first restores the
documents as of --to into staging databases on the target (rewind_staging_*,
dropped when it ends, also on failure or Ctrl-C), queries them there and copies
the matching ones. --merge writes into namespaces that hold data: missing
inserts only documents whose _id the target lacks and never modifies or deletes
anything; overwrite replaces by _id the documents it restores and leaves every
other alone. A merge leaves the target's indexes as they are, and still refuses
a view, or a capped, collation, time series or clustering difference. Views are
not restored by a filtered or merging restore.`,
		Example: `  rewind restore --repo file:///var/lib/rewind --target mongodb://db2:27017 --to 2026-11-25T09:30:00Z
  rewind restore --repo ... --target ... --to latest --ns shop.orders --rename shop.orders=shop.orders_restored
  rewind restore --repo ... --target ... --to 1764063000:12 --ns 'shop.*' --rename shop=shop_0930 --dry-run
  rewind restore --repo ... --target ... --to 2026-11-25T10:30:59Z --ns shop.orders --filter '{"grp": 3}' --merge missing`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runRestore(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.req.Target, "target", "", "connection string of the deployment to restore into (required, except for --dry-run)")
	fileFlag(cmd, "target", &f.targetFile)
	fl.StringVar(&f.to, "to", "", "restore point: RFC 3339 time, SECONDS:INCREMENT or latest (required)")
	fl.StringArrayVar(&f.req.Include, "ns", nil, "restore only these namespaces (db, db.* or db.coll; repeatable); default all")
	fl.StringArrayVar(&f.rename, "rename", nil, "restore a database or collection under a new name: FROM=TO (shop=shop_0930, shop.orders=shop.orders_old; repeatable)")
	fl.StringVar(&f.req.Filter, "filter", "", "restore only the documents that match this MongoDB query (Extended JSON, {\"grp\": 3}) as of --to; the target's server evaluates it on a staging copy")
	fl.Var(mergeFlag{&f.req.Merge}, "merge", "write into target namespaces that hold data: missing (insert only documents whose _id is absent) or overwrite (replace by _id the documents restored)")
	fl.BoolVar(&f.req.Drop, "drop", false, "drop and re-create as the backup has them the target namespaces in the way (default: refuse before writing anything)")
	fl.BoolVar(&f.req.WithUsersAndRoles, "with-users-and-roles", false, "also restore the snapshot's users and roles of the restored databases")
	countVar(cmd, &f.req.Parallel, "parallel", restore.DefaultParallel, 1, "snapshot objects loaded at once, and oplog replay lanes")
	fl.BoolVar(&f.req.DryRun, "dry-run", false, "print the plan (snapshot, objects and bytes to read, oplog range and entry count, target namespaces) and, with --target, what is in the way there and the estimated time (from a short write probe there, dropped afterwards); change nothing else")
	f.req.ConnectTimeout = restore.DefaultConnectTimeout
	fl.Var(connectTimeout{&f.req.ConnectTimeout}, "connect-timeout", "how long to wait for the target deployment (30s, 2m)")
	fl.BoolVar(&f.req.Checksum, "checksum", false, "when done, print each restored collection's content checksum (SHA-256 of its documents' raw BSON in _id order, and the count); compare with `rewind checksum` on the source")
	fl.BoolVar(&f.asJSON, "json", false, "print the result as JSON (the API's restore result; with --dry-run the API's plan) instead of the plan and report")
	return cmd
}

// connectTimeout is --connect-timeout, read by restore.ParseConnectTimeout
// as the API's connect_timeout is: a given 0 is a usage error.
type connectTimeout struct{ d *config.Duration }

func (c connectTimeout) String() string {
	if c.d == nil {
		return ""
	}
	return c.d.String()
}

func (c connectTimeout) Set(s string) error {
	d, err := restore.ParseConnectTimeout(s)
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		return errors.New(inv.Msg) // cobra names the flag
	}
	*c.d = d
	return err
}

func (c connectTimeout) Type() string { return "duration" }

// request turns the command line into a validated restore request; every
// mistake is a usage error (exit 2).
func (f *restoreFlags) request(cmd *cobra.Command, rf *repoFlags) (restore.Request, error) {
	if err := rf.require(cmd); err != nil {
		return restore.Request{}, err
	}
	req := f.req
	if err := readFileFlag(cmd, "target", f.targetFile, &req.Target); err != nil {
		return req, err
	}
	var err error
	if f.to != "" {
		if req.To, err = restore.ParseWhen(f.to); err != nil {
			return req, usagef(cmd, "%v", err)
		}
	}
	var pairs []restore.RenamePair
	for _, p := range f.rename {
		from, to, ok := strings.Cut(p, "=")
		if !ok {
			return req, usagef(cmd, "--rename %q: want FROM=TO, for example shop=shop_0930", p)
		}
		pairs = append(pairs, restore.RenamePair{From: from, To: to})
	}
	if req.Rename, err = restore.Renames(pairs); err != nil {
		return req, usagef(cmd, "%v", err)
	}
	if err := req.Validate(); err != nil {
		return req, usagef(cmd, "%v", err)
	}
	return req, nil
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
	var t *restore.Target // connected first: a wrong --target fails before the oplog is read
	if req.Target != "" {
		if t, err = restore.Connect(ctx, req.Target, req.ConnectTimeout); err != nil {
			return err
		}
		defer t.Close(ctx)
	}
	p, err := restore.Prepare(ctx, r.Repository, req)
	if err != nil {
		return err
	}
	defer p.Release()
	out := cmd.OutOrStdout()
	width := outputWidth(out)
	if req.DryRun {
		return dryRun(ctx, out, width, p, t, f.asJSON)
	}
	if !f.asJSON {
		if err := printPlan(out, width, p.Plan, false); err != nil {
			return err
		}
	}
	o := restore.Options{Progress: &restore.Progress{}, Log: slog.Default()}
	var rep restore.Report
	err = withProgress(cmd, o.Progress, o.Log, func() (err error) {
		rep, err = p.Execute(ctx, t, o)
		return err
	})
	if err != nil {
		return err
	}
	if f.asJSON {
		return printJSON(out, api.RestoreResultOf(rep))
	}
	if err := printReport(out, width, rep); err != nil {
		return err
	}
	return printChecksums(out, width, rep.Checksums)
}

// printChecksums is the table of content checksums, when there are any.
func printChecksums(w io.Writer, width int, sums []checksum.Sum) error {
	if len(sums) == 0 {
		return nil
	}
	if _, err := fmt.Fprintln(w, "Content checksums (SHA-256 of the documents' raw BSON in _id order)"); err != nil {
		return err
	}
	return printChecksumTable(w, width, sums)
}

// dryRun prints the plan and, when there is a target (t), what is in the
// way there (the verdict the restore itself would reach) and how long the
// restore should take (restore.Estimate); asJSON prints the API's plan.
func dryRun(ctx context.Context, out io.Writer, width int, p *restore.Prepared, t *restore.Target, asJSON bool) error {
	var findings []restore.Finding
	var est *api.EstimateView
	if t != nil {
		var err error
		if findings, err = p.Check(ctx, t); err != nil {
			return err
		}
		est = api.EstimateOf(p.Estimate(ctx, t))
	}
	if asJSON {
		view := api.PlanViewOf(p.Plan)
		if t != nil {
			view.TargetCheck, view.Estimate = api.TargetCheckOf(findings, p.Request), est
		}
		return printJSON(out, view)
	}
	if err := printPlan(out, width, p.Plan, true); err != nil {
		return err
	}
	return printTargetCheck(out, width, findings, est, p.Request, t != nil)
}

// connectTarget connects to a deployment (restore.Connect) and hands over
// its client; verify's trial restore uses it for --restore-to.
func connectTarget(ctx context.Context, uri string, timeout time.Duration) (*mongo.Client, error) {
	t, err := restore.Connect(ctx, uri, config.Duration(timeout))
	if err != nil {
		return nil, err
	}
	return t.Client, nil
}

func printTargetCheck(w io.Writer, width int, findings []restore.Finding, est *api.EstimateView, req restore.Request, checked bool) error {
	p := newPrinter(w, width, 18)
	if !checked {
		p.fact("target", "not checked: add --target to see what is in the way there")
		p.fact("estimated time", "not estimated: add --target (a short write probe there measures its rate)")
		return p.err
	}
	p.fact("target", restore.VerdictOf(findings, req))
	for _, f := range findings {
		p.item(f.String())
	}
	if est.NotEstimated != "" {
		p.fact("estimated time", "not estimated: "+est.NotEstimated)
	} else {
		p.fact("estimated time", est.Summary)
	}
	return p.err
}

func printPlan(w io.Writer, width int, plan restore.Plan, dry bool) error {
	p := newPrinter(w, width, 18)
	if dry {
		p.line("Restore plan (dry run: nothing is changed)")
	} else {
		p.line("Restore plan")
	}
	p.fact("restore point", fmt.Sprintf("%s (replay entries up to %s)", plan.Request, plan.Target))
	p.fact("snapshot", fmt.Sprintf("%s, consistent at %s (%s), copy started at %s", plan.Snapshot.ID,
		plan.Snapshot.End.Time().Format(time.RFC3339), plan.Snapshot.End, plan.Snapshot.Start))
	p.fact("snapshot objects", fmt.Sprintf("%d chunks, %s, %d documents", plan.Chunks, humanBytes(plan.ChunkBytes), plan.Documents))
	tl := plan.Window.Timeline
	if tl == "" {
		tl = "none needed"
	}
	p.fact("oplog", fmt.Sprintf("%s .. %s on timeline %s (flavor %s): %d segments, %s", plan.ReplayFrom, plan.Target, tl,
		orDash(string(plan.Flavor)), len(plan.Segments), humanBytes(plan.SegmentBytes)))
	p.fact("oplog entries", fmt.Sprint(plan.Entries))
	if plan.Staged() {
		p.fact("documents", stagedText(plan))
	}
	if plan.Orphans != "" {
		p.fact("orphans", plan.Orphans)
	}
	if plan.Empty() {
		p.fact("namespaces", restore.EmptyNote)
	} else {
		printNamespaces(p, plan)
	}
	if len(plan.Users)+len(plan.Roles) > 0 {
		p.fact("users and roles", fmt.Sprintf("%d users, %d roles", len(plan.Users), len(plan.Roles)))
	}
	return p.err
}

// printNamespaces is the plan's table: every source and where it goes.
func printNamespaces(p *printer, plan restore.Plan) {
	p.fact("namespaces", "")
	rows := [][]string{{"SOURCE", "TARGET", "DOCUMENTS", "CHUNKS"}}
	for _, c := range plan.Collections {
		rows = append(rows, []string{c.Source.String(), c.Target.String(), fmt.Sprint(c.Manifest.Count), fmt.Sprint(len(c.Manifest.Chunks))})
	}
	for _, v := range plan.Views {
		rows = append(rows, []string{v.Source.String(), v.Target.String(), "view", "-"})
	}
	for _, l := range plan.Late {
		kind := "from oplog"
		if l.View {
			kind = "view (oplog)"
		}
		rows = append(rows, []string{l.Source.String(), l.Target.String(), kind, "-"})
	}
	p.table("    ", rows, 0, 1)
}

func printReport(w io.Writer, width int, rep restore.Report) error {
	p := newPrinter(w, width, 18)
	last := "none (no entry after the snapshot)"
	if !rep.LastApplied.IsZero() {
		last = fmt.Sprintf("%s (%s)", rep.LastApplied.Time().Format(time.RFC3339), rep.LastApplied)
	}
	p.line(fmt.Sprintf("Restored from snapshot %s in %s", rep.Snapshot, rep.Duration.Round(time.Millisecond)))
	if rep.Staged {
		p.fact("documents staged", fmt.Sprintf("%d loaded as of the restore point into staging databases on the target (dropped since)", rep.Documents))
	} else {
		p.fact("documents loaded", fmt.Sprint(rep.Documents))
	}
	if rep.OrphansSkipped > 0 {
		p.fact("orphans skipped", fmt.Sprintf("%d (a shard held them without owning them; per namespace in `--json`)", rep.OrphansSkipped))
	}
	p.fact("oplog entries", fmt.Sprintf("%d replayed (%d inserts, %d updates, %d deletes, %d commands, %d skipped); last %s",
		rep.Entries, rep.Replay.Inserts, rep.Replay.Updates, rep.Replay.Deletes, rep.Replay.Commands, rep.Replay.Skipped, last))
	p.fact("bytes read", humanBytes(rep.Bytes))
	if !rep.Staged {
		p.fact("indexes built", fmt.Sprintf("%d; views %d; users %d; roles %d", rep.Indexes, rep.Views, rep.Users, rep.Roles))
	}
	phases := make([]string, len(rep.Phases))
	for i, ph := range rep.Phases {
		phases[i] = fmt.Sprintf("%s %s", ph.Name, ph.Duration.Round(time.Millisecond))
	}
	p.fact("time spent", strings.Join(phases, ", "))
	if sh := rep.Sharding; sh != nil {
		p.fact("sharded target", fmt.Sprintf("%d databases created, %d collections sharded, %d zone ranges set (routing of cluster snapshot %q)",
			len(sh.Databases), len(sh.Collections), len(sh.Zones), sh.From))
		for _, sk := range sh.Skipped {
			p.fact("not carried over", sk)
		}
	}
	if len(rep.Namespaces) == 0 && rep.Views == 0 {
		p.fact("namespaces", restore.EmptyNote)
		return p.err
	}
	if rep.Staged {
		printMerged(p, rep)
		return p.err
	}
	rows := [][]string{{"TARGET", "SOURCE", "LOADED", "DOCUMENTS NOW"}}
	for _, n := range rep.Namespaces {
		rows = append(rows, []string{n.Target.String(), n.Source.String(), fmt.Sprint(n.Loaded), fmt.Sprint(n.Final)})
	}
	p.table("  ", rows, 0, 1)
	return p.err
}

// stagedText says what a filtered or merging restore writes.
func stagedText(plan restore.Plan) string {
	what := "all documents as of the restore point"
	if plan.Filter != nil {
		what = "those that match --filter " + showRaw(plan.Filter) + " as of the restore point"
	}
	switch plan.Merge {
	case restore.MergeMissing:
		return what + ", merged: inserted where the target lacks their _id, never modifying or deleting (views are not restored)"
	case restore.MergeOverwrite:
		return what + ", merged: replaced by _id, every other document left alone (views are not restored)"
	}
	return what + ", into absent or empty namespaces (views are not restored)"
}

// printMerged is the report's table for a filtered or merging restore.
func printMerged(p *printer, rep restore.Report) {
	p.fact("restored", fmt.Sprintf("%d documents: %d inserted, %d replaced, %d left alone (the target held them)",
		rep.Matched(), rep.Inserted, rep.Replaced, rep.LeftAlone))
	if len(rep.Namespaces) == 0 {
		p.fact("namespaces", "none: no document matched")
		return
	}
	rows := [][]string{{"TARGET", "SOURCE", "INSERTED", "REPLACED", "LEFT ALONE", "DOCUMENTS NOW"}}
	for _, n := range rep.Namespaces {
		rows = append(rows, []string{n.Target.String(), n.Source.String(), fmt.Sprint(n.Inserted), fmt.Sprint(n.Replaced),
			fmt.Sprint(n.LeftAlone), fmt.Sprint(n.Final)})
	}
	p.table("  ", rows, 0, 1)
}

// showRaw is a document as relaxed Extended JSON.
func showRaw(d bson.Raw) string {
	js, err := bson.MarshalExtJSON(d, false, false)
	if err != nil {
		return d.String()
	}
	return string(js)
}

// mergeFlag is --merge: missing or overwrite, checked when the flag is read.
type mergeFlag struct{ m *restore.Merge }

func (f mergeFlag) String() string {
	if f.m == nil {
		return ""
	}
	return string(*f.m)
}

func (f mergeFlag) Set(s string) error {
	m, err := restore.ParseMerge(s)
	var inv *restore.InvalidError
	if errors.As(err, &inv) {
		return errors.New(inv.Msg) // cobra names the flag
	}
	*f.m = m
	return err
}

func (f mergeFlag) Type() string { return "missing|overwrite" }
