package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/restore"
)

// undoFlags are the flags of `rewind undo`: the restore.UndoRequest, plus
// the two restore points in the command line's own syntax.
type undoFlags struct {
	req      restore.UndoRequest
	from, to string
	// targetFile is --target-file, a file holding --target.
	targetFile string
}

func newUndoCmd() *cobra.Command {
	var rf repoFlags
	var f undoFlags
	cmd := &cobra.Command{
		Use:   "undo",
		Short: "Put back the documents a time range changed, as they were before it",
		Long: `undo puts back, in the target (usually the live deployment), every document that an
oplog entry in (--from, --to] changed in the --ns namespaces, as it was at --from:
deleted documents are inserted again, updated or replaced ones replaced, inserted
ones deleted. A collection the range dropped is re-created as it was at --from,
with its indexes. Every other document is left alone, and so is every document
written again since --to: its version in the target is not the one it had at
--to, so it is a conflict, listed and left alone unless --force.

The versions at --from and at --to of just those documents are staged on the
target (staging databases rewind_staging_*, dropped when undo ends, also on
failure or Ctrl-C), and compared with the target's, byte for byte, before the
first write. --dry-run stops there and says what would change. --filter limits
the undo to the documents that match a MongoDB query as of --from (a document
the range inserted: as of --to); the target's server evaluates it. Running the
same undo again finishes one that stopped: documents already put back are
recognized. A range that renames a collection is refused.`,
		Example: `  rewind undo --repo file:///var/lib/rewind --target mongodb://db1:27017 --ns shop.orders \
      --from 2026-11-25T10:30:59Z --to 2026-11-25T10:31:30Z --dry-run
  rewind undo --repo ... --target ... --ns shop --from 1764066659:4 --to 1764066690:1 --filter '{"grp": 3}'`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runUndo(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.req.Target, "target", "", "connection string of the deployment to undo in, usually the live one (required, also for --dry-run: the versions are staged there)")
	fileFlag(cmd, "target", &f.targetFile)
	fl.StringVar(&f.from, "from", "", "the state to put back, the range's exclusive start: an RFC 3339 time means the END of that second (an operation logged in that second is not undone: give the second before it) or SECONDS:INCREMENT (required)")
	fl.StringVar(&f.to, "to", "", "the range's inclusive end: RFC 3339 time, SECONDS:INCREMENT or latest (required)")
	fl.StringArrayVar(&f.req.Include, "ns", nil, "undo in these namespaces (db, db.* or db.coll; repeatable; required)")
	fl.StringVar(&f.req.Filter, "filter", "", "undo only the documents that match this MongoDB query (Extended JSON) as of --from")
	fl.BoolVar(&f.req.DryRun, "dry-run", false, "say what would change (counts and the first _ids per namespace); write only the staging")
	fl.BoolVar(&f.req.Force, "force", false, "put back the documents changed since --to (conflicts) as well")
	countVar(cmd, &f.req.Parallel, "parallel", restore.DefaultParallel, 1, "snapshot objects loaded at once, and oplog replay lanes, while staging")
	f.req.ConnectTimeout = restore.DefaultConnectTimeout
	fl.Var(connectTimeout{&f.req.ConnectTimeout}, "connect-timeout", "how long to wait for the target deployment (30s, 2m)")
	return cmd
}

// request turns the command line into a validated undo request; every
// mistake is a usage error (exit 2).
func (f *undoFlags) request(cmd *cobra.Command, rf *repoFlags) (restore.UndoRequest, error) {
	if err := rf.require(cmd); err != nil {
		return restore.UndoRequest{}, err
	}
	req := f.req
	if err := readFileFlag(cmd, "target", f.targetFile, &req.Target); err != nil {
		return req, err
	}
	var err error
	if f.from != "" {
		if req.From, err = restore.ParseFrom(f.from); err != nil {
			return req, usagef(cmd, "%v", err)
		}
	}
	if f.to != "" {
		if req.To, err = restore.ParseWhen(f.to); err != nil {
			return req, usagef(cmd, "%v", err)
		}
	}
	if err := req.Validate(); err != nil {
		return req, usagef(cmd, "%v", err)
	}
	return req, nil
}

func runUndo(cmd *cobra.Command, rf *repoFlags, f *undoFlags) error {
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
	t, err := restore.Connect(ctx, req.Target, req.ConnectTimeout)
	if err != nil {
		return err
	}
	defer t.Close(ctx)
	u, err := restore.PrepareUndo(ctx, r.Repository, req)
	if err != nil {
		return err
	}
	defer u.Release()
	o := restore.Options{Progress: &restore.Progress{}, Log: slog.Default()}
	var rep restore.UndoReport
	err = withProgress(cmd, o.Progress, o.Log, func() (err error) {
		rep, err = u.Execute(ctx, t, o)
		return err
	})
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	return printUndoReport(out, outputWidth(out), rep)
}

// printUndoReport prints what an undo did, or would do.
func printUndoReport(w io.Writer, width int, rep restore.UndoReport) error {
	p := newPrinter(w, width, 18)
	head := "Undo of " + undoPoint(rep.From) + " .. " + undoPoint(rep.To)
	if rep.DryRun {
		head += " (dry run: nothing is changed)"
	}
	p.line(head)
	p.fact("oplog entries", fmt.Sprintf("%d in the range", rep.Entries))
	if rep.Filter != nil {
		p.fact("filter", showRaw(rep.Filter)+" as of --from (as of --to for documents the range inserted)")
	}
	if len(rep.Namespaces) == 0 {
		p.fact("documents", "none: the range changed no document of the namespaces given")
	} else {
		p.fact("documents", undoCounts(rep.UndoCounts, rep.DryRun))
		if rep.ConflictsLeft > 0 {
			p.fact("conflicts", fmt.Sprintf("%d changed since --to: left alone (their _ids are listed below; --force puts them back too)", rep.ConflictsLeft))
		}
		printUndoNamespaces(p, rep)
	}
	for _, n := range rep.Notes {
		p.fact("note", n)
	}
	if len(rep.Phases) > 0 {
		phases := make([]string, len(rep.Phases))
		for i, ph := range rep.Phases {
			phases[i] = fmt.Sprintf("%s %s", ph.Name, ph.Duration.Round(time.Millisecond))
		}
		p.fact("time spent", fmt.Sprintf("%s (%s)", rep.Duration.Round(time.Millisecond), strings.Join(phases, ", ")))
	}
	return p.err
}

func undoPoint(ts optime.Timestamp) string {
	return fmt.Sprintf("%s (%s)", ts.Time().UTC().Format(time.RFC3339), ts)
}

// undoCounts says what happened to the documents the range changed.
func undoCounts(c restore.UndoCounts, dry bool) string {
	verb := map[bool]string{false: "", true: "would be "}[dry]
	s := fmt.Sprintf("%d changed by the range: %d %srestored, %d %sre-inserted, %d %sdeleted, %d unchanged, %d conflicts left alone",
		c.Changed, c.Restored, verb, c.Reinserted, verb, c.Deleted, verb, c.Unchanged, c.ConflictsLeft)
	if c.ConflictsForced > 0 {
		s += fmt.Sprintf(", %d conflicts %sput back (--force)", c.ConflictsForced, verb)
	}
	if c.NotSelected > 0 {
		s += fmt.Sprintf("; %d more not selected by --filter", c.NotSelected)
	}
	return s
}

// printUndoNamespaces is the per-namespace table and the _ids listed.
func printUndoNamespaces(p *printer, rep restore.UndoReport) {
	rows := [][]string{{"NAMESPACE", "RESTORED", "RE-INSERTED", "DELETED", "UNCHANGED", "CONFLICTS"}}
	for _, n := range rep.Namespaces {
		name := n.Namespace.String()
		if n.Recreated {
			name += " (re-created)"
		}
		rows = append(rows, []string{name, fmt.Sprint(n.Restored), fmt.Sprint(n.Reinserted), fmt.Sprint(n.Deleted),
			fmt.Sprint(n.Unchanged), fmt.Sprint(n.ConflictsLeft + n.ConflictsForced)})
	}
	p.table("  ", rows, 0)
	for _, n := range rep.Namespaces {
		if len(n.Sample)+len(n.Conflicts) == 0 {
			continue
		}
		p.line("  " + n.Namespace.String() + ":")
		if len(n.Sample) > 0 {
			p.item("writes _id " + idList(n.Sample, n.Written()))
		}
		if len(n.Conflicts) > 0 {
			p.item("conflicts _id " + idList(n.Conflicts, n.ConflictsLeft+n.ConflictsForced))
		}
	}
}

// idList shows _ids as relaxed Extended JSON, and how many more there are.
func idList(ids []bson.RawValue, total int64) string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = idText(id)
	}
	s := strings.Join(out, ", ")
	if more := total - int64(len(ids)); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s
}

// idText is one _id as relaxed Extended JSON.
func idText(id bson.RawValue) string {
	doc, err := bson.Marshal(bson.D{{Key: "v", Value: id}})
	if err != nil {
		return id.String()
	}
	js, err := bson.MarshalExtJSON(bson.Raw(doc), false, false)
	if err != nil {
		return id.String()
	}
	return strings.TrimSuffix(strings.TrimPrefix(string(js), `{"v":`), "}")
}
