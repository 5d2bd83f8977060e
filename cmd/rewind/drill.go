package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/drill"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/source"
)

type drillFlags struct {
	scratch, source, to string
	sourceIn            *input
	ns                  []string
	asJSON, noRecord    bool
	scratchFile         string // --scratch-file
}

func newDrillCmd() *cobra.Command {
	var rf repoFlags
	var f drillFlags
	cmd := &cobra.Command{
		Use:   "drill",
		Short: "Restore a point into a scratch deployment and prove it equals the source",
		Long: `drill restores a point (--to: latest, random, an RFC 3339 time or SECONDS:INCREMENT)
into an EMPTY scratch deployment the way rewind restore does, computes every
restored collection's content checksum (SHA-256 of its documents' raw BSON in
_id order, and the count), and compares them:

  - with the live source (--source) at the same point, when it can be read
    there: on MongoDB 5.0+ by a snapshot read inside its snapshot history
    window (300 s by default); on a source without snapshot reads (FerretDB)
    only when nothing was written to it since the point;
  - otherwise with the checksums recorded for that point (a drill against the
    source right after a snapshot records them; the agent's drills do).

random picks a point among those that have recorded checksums. Everything the
drill restored is dropped from the scratch deployment when it ends, also on
failure or Ctrl-C. The result (time, point, verdict, durations, RTO) is kept
in the repository (the newest 100), unless --no-record.

Exit 0 when every collection is exact; 3 when one differs (the first differing
document is named, with its _id and both versions, when the source can be
read) or the repository cannot restore the point (the object is named); 1 when
there is nothing to compare with ("no reference for this point") or the drill
could not run.`,
		Example: `  rewind drill --repo file:///var/lib/rewind --scratch mongodb://scratch:27017 --source mongodb://db1:27017/?replicaSet=rs0
  rewind drill --repo file:///var/lib/rewind --scratch mongodb://scratch:27017 --to random --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runDrill(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.scratch, "scratch", "", "connection string of an EMPTY scratch deployment to restore into (required; emptied again afterwards)")
	fileFlag(cmd, "scratch", &f.scratchFile)
	f.sourceIn = sourceInput.bind(cmd, "connection string of the live source to compare with at the same point")
	fl.StringVar(&f.to, "to", drill.Latest, "point to drill: latest, random, an RFC 3339 time or SECONDS:INCREMENT")
	fl.StringArrayVar(&f.ns, "ns", nil, "drill only these namespaces (db, db.* or db.coll; repeatable); default all")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	fl.BoolVar(&f.noRecord, "no-record", false, "do not keep the result in the repository")
	cmd.AddCommand(newDrillHistoryCmd())
	return cmd
}

func runDrill(cmd *cobra.Command, rf *repoFlags, f *drillFlags) error {
	if err := rf.require(cmd); err != nil {
		return err
	}
	if err := readFileFlag(cmd, "scratch", f.scratchFile, &f.scratch); err != nil {
		return err
	}
	if f.scratch == "" {
		return usagef(cmd, "--scratch is required: the connection string of an empty deployment to restore into")
	}
	if err := config.CheckMongoURI(f.scratch); err != nil {
		return usagef(cmd, "--scratch: %v", err)
	}
	var err error
	if f.source, _, err = resolveSource(cmd, f.sourceIn, ""); err != nil {
		return err
	}
	if _, err := drill.ParseTo(f.to); err != nil {
		return usagef(cmd, "%v", strings.TrimPrefix(err.Error(), drill.ErrBadRequest.Error()+": "))
	}
	if _, err := restore.NewMapper(f.ns, nil); err != nil {
		return usagef(cmd, "%v", err)
	}
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	t, err := restore.Connect(ctx, f.scratch, restore.DefaultConnectTimeout)
	if err != nil {
		return fmt.Errorf("%w (--scratch)", err)
	}
	defer t.Close(ctx)
	d := drill.Deps{Repo: r.Repository, Scratch: t.Client, Progress: &restore.Progress{}, Log: slog.Default()}
	if f.source != "" {
		if d.Source, err = source.Connect(ctx, f.source); err != nil {
			return fmt.Errorf("%w (--source)", err)
		}
		defer closeWithin(d.Source.Close)
	}
	var res drill.Result
	err = withProgress(cmd, d.Progress, d.Log, func() (err error) {
		res, err = drill.Run(ctx, d, drill.Request{To: f.to, Include: f.ns, Record: !f.noRecord})
		return err
	})
	if errors.Is(err, drill.ErrBadRequest) {
		return usagef(cmd, "%v", err)
	}
	if err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if f.asJSON {
		err = printJSON(out, res.View())
	} else {
		err = printDrill(out, outputWidth(out), res)
	}
	if err != nil {
		return err
	}
	switch res.Verdict {
	case drill.Exact:
		return nil
	case drill.NoReference:
		return errors.New(res.Problem)
	}
	return &problemsError{msg: res.Summary(), quiet: f.asJSON}
}

func printDrill(w io.Writer, width int, res drill.Result) error {
	p := newPrinter(w, width, 18)
	p.line("D" + res.Summary()[1:])
	against := "nothing"
	switch res.Against {
	case "source":
		against = "the live source at the same point"
	case "reference":
		against = "the checksums recorded for this point (" + res.Why + ")"
	}
	p.fact("compared with", against)
	if res.Snapshot != "" {
		p.fact("snapshot", res.Snapshot)
	}
	p.fact("restored", fmt.Sprintf("%d collections, %d documents, %s", res.Collections, res.Documents, humanBytes(res.Bytes)))
	phases := make([]string, len(res.Phases))
	for i, ph := range res.Phases {
		phases[i] = fmt.Sprintf("%s %s", ph.Name, time.Duration(ph.Seconds*float64(time.Second)).Round(time.Millisecond))
	}
	p.fact("time spent", strings.Join(phases, ", "))
	if res.RTO > 0 {
		p.fact("RTO", fmt.Sprintf("%.1f s of restore per GB (restore %.2f s)", res.RTO, res.RestoreSeconds))
	}
	for _, d := range res.Differences {
		p.item(d.String())
	}
	if p.err != nil {
		return p.err
	}
	return printChecksumTable(w, width, res.Checksums)
}
