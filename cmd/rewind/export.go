package main

import (
	"fmt"
	"io"
	"log/slog"
	"path"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/export"
	"github.com/rewind-backup/rewind/internal/restore"
)

// exportFlags are the flags of `rewind export`: the export.Request, plus
// the two that are parsed first.
type exportFlags struct {
	req      export.Request
	to       string // parsed by restore.ParseWhen
	format   string // parsed by export.ParseFormat
	parallel int
}

func newExportCmd() *cobra.Command {
	var rf repoFlags
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the data as of a point in time to files, without a MongoDB server",
		Long: `export computes the data as it was at the restore point from the repository
alone (the snapshot before it and the oplog after the snapshot, replayed in
memory: no server is needed) and writes it as:

  jsonl    a directory: DB/NAME.jsonl (canonical Extended JSON, one document
           per line) and DB/NAME.metadata.json (options and indexes)
  bson     mongodump's directory: DB/NAME.bson and DB/NAME.metadata.json,
           for mongorestore --dir
  archive  one mongodump archive file, for mongorestore --archive

NAME is the collection name query-escaped as mongodump does (a space is +,
other bytes outside letters, digits and -_.~ are %XX). --out - writes to
standard output: an archive, or with bson or jsonl the documents of the one
collection --ns selects. A directory must be new or empty; an existing
archive file is replaced only with --force. The output appears only when the
export is complete (an interrupted export leaves nothing behind).`,
		Example: `  rewind export --repo file:///var/lib/rewind --to 2026-11-25T09:30:00Z --format archive --out shop-0930.archive
  rewind export --repo ... --to latest --format archive --out - | mongorestore --archive --uri mongodb://db2:27017
  rewind export --repo ... --to 1764063000:12 --ns shop.orders --format jsonl --out - | head -3
  rewind export --repo ... --to latest --ns 'shop.*' --format bson --out dump/ && mongorestore --dir dump/`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runExport(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.to, "to", "", "restore point: RFC 3339 time, SECONDS:INCREMENT or latest (required)")
	fl.StringArrayVar(&f.req.Include, "ns", nil, "export only these namespaces (db, db.* or db.coll; repeatable); default all")
	fl.StringVar(&f.format, "format", "", "jsonl, bson or archive (required)")
	fl.StringVar(&f.req.Out, "out", "", "directory to create (jsonl, bson), archive file, or - for standard output (required)")
	fl.BoolVar(&f.req.Force, "force", false, "replace an existing archive file (a directory is never replaced)")
	countVar(cmd, &f.parallel, "parallel", export.DefaultParallel, 1, "snapshot objects read at once")
	return cmd
}

// request turns the command line into a validated export request; every
// mistake is a usage error (exit 2).
func (f *exportFlags) request(cmd *cobra.Command, rf *repoFlags) (export.Request, error) {
	if err := rf.require(cmd); err != nil {
		return export.Request{}, err
	}
	req := f.req
	var err error
	if f.to != "" {
		if req.To, err = restore.ParseWhen(f.to); err != nil {
			return req, usagef(cmd, "%v", err)
		}
	}
	if req.Format, err = export.ParseFormat(f.format); err != nil {
		return req, usagef(cmd, "%v", err)
	}
	if err := req.Validate(); err != nil {
		return req, usagef(cmd, "%v", err)
	}
	return req, nil
}

func runExport(cmd *cobra.Command, rf *repoFlags, f *exportFlags) error {
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
	p, err := export.Prepare(ctx, r.Repository, req)
	if err != nil {
		return err
	}
	defer p.Release()
	info := cmd.OutOrStdout() // the data owns standard output with --out -
	if req.Out == export.Stdout {
		info = cmd.ErrOrStderr()
	}
	o := export.Options{Stdout: cmd.OutOrStdout(), Parallel: f.parallel, ToolVersion: "rewind " + version,
		Progress: &export.Progress{}, Log: slog.Default()}
	var rep export.Report
	err = withProgress(cmd, o.Progress, o.Log, func() (err error) {
		rep, err = p.Write(ctx, o)
		return err
	})
	if err != nil {
		return err
	}
	return printExport(info, outputWidth(info), req.Format, rep)
}

func printExport(w io.Writer, width int, format export.Format, rep export.Report) error {
	p := newPrinter(w, width, 18)
	p.line(fmt.Sprintf("Exported the data as of %s (%s) from snapshot %s in %s",
		rep.Target.Time().Format(time.RFC3339), rep.Target, rep.Snapshot, rep.Duration.Round(time.Millisecond)))
	p.fact("output", fmt.Sprintf("%s (%s)", rep.Out, format))
	p.fact("documents", fmt.Sprintf("%d written (%s); %d of them from the oplog range, held in memory", rep.Documents, humanBytes(rep.Bytes), rep.Held))
	p.fact("oplog entries", fmt.Sprintf("%d replayed in memory (%d inserts, %d updates, %d deletes, %d commands, %d skipped)",
		rep.Entries, rep.Replay.Inserts, rep.Replay.Updates, rep.Replay.Deletes, rep.Replay.Commands, rep.Replay.Skipped))
	p.fact("snapshot read", humanBytes(rep.Read))
	if len(rep.Namespaces) == 0 {
		p.fact("namespaces", "none: the deployment held no collection or view at this restore point (its exact state)")
		return p.err
	}
	dir := format != export.Archive && rep.Out != export.Stdout
	head, shrink := []string{"NAMESPACE", "DOCUMENTS", "SIZE"}, []int{0}
	if dir {
		head, shrink = append(head, "FILES"), append(shrink, 3)
	}
	rows := [][]string{head}
	for _, n := range rep.Namespaces {
		row := []string{n.String(), fmt.Sprint(n.Count), humanBytes(n.Bytes)}
		if n.View {
			row[1], row[2] = "view", "-"
		}
		if dir {
			row = append(row, path.Join(n.DB, export.FileName(n.Coll))+".*")
		}
		rows = append(rows, row)
	}
	p.table("  ", rows, shrink...)
	return p.err
}
