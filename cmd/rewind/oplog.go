package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/rewind-backup/rewind/internal/browse"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/restore"
)

// oplogFlags are the flags of `rewind oplog`, read into a browse.Query.
type oplogFlags struct {
	q browse.Query
	pointFlags
	summary, json, raw bool
}

// pointFlags are --from, --to and --id as oplog and history take them.
type pointFlags struct{ from, to, id string }

// parse reads the given ones; every mistake is a usage error (exit 2).
func (f pointFlags) parse(cmd *cobra.Command) (from, to restore.When, id bson.RawValue, err error) {
	if f.from != "" {
		if from, err = browse.ParseWhen("from", f.from); err != nil {
			return from, to, id, usagef(cmd, "%v", err)
		}
	}
	if f.to != "" {
		if to, err = browse.ParseWhen("to", f.to); err != nil {
			return from, to, id, usagef(cmd, "%v", err)
		}
	}
	if cmd.Flags().Changed("id") {
		if id, err = browse.ParseID(f.id); err != nil {
			return from, to, id, usagef(cmd, "%v", err)
		}
	}
	return from, to, id, nil
}

func newOplogCmd() *cobra.Command {
	var rf repoFlags
	var f oplogFlags
	cmd := &cobra.Command{
		Use:   "oplog",
		Short: "Browse the captured oplog: what happened, when, to which documents",
		Long: `oplog lists the operations the repository captured in a time range: time, oplog
timestamp, kind (insert, update, delete, command), namespace, the document's _id
and the change, as canonical Extended JSON. Each operation inside an applyOps
entry (a transaction, a batched multi-document write) is listed on its own, at
the entry's timestamp, marked "in transaction" or "in applyOps". No-op entries
are never listed; without --ns, neither are local.* and config.*.

--summary counts the operations per second, namespace and kind instead: a
deleteMany of 5,000 documents is one line with 5,000 deletes. It reads the small
index stored with every segment, not the segments themselves.

--from and --to take an RFC 3339 time (for --from the start of that second, for
--to its end), an oplog timestamp SECONDS:INCREMENT (inclusive), or latest.
--to defaults to latest, --from to one hour before --to. Text lines are cut to
the terminal's width (100 columns when not a terminal); --json prints JSON Lines
with every change whole, --raw the stored entries themselves.

--ns takes db, db.*, db.coll or a pattern with * ? [..] (repeatable); commands
are listed for every collection of a selected database, since a drop or rename
there can change the collection. --id selects the operations on one document by
its _id as Extended JSON (42, '"abc"', '{"$oid": "..."}'). A repository that
holds several shards needs --shard.`,
		Example: `  rewind oplog --repo file:///var/lib/rewind --from 2026-11-25T10:31:00Z --to 2026-11-25T10:31:59Z --summary
  rewind oplog --repo ... --from 2026-11-25T10:31:07Z --to 2026-11-25T10:31:07Z --ns shop.orders --op delete
  rewind oplog --repo ... --ns shop.orders --id '{"$oid": "656f1f77bcf86cd799439011"}' --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runOplog(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.from, "from", "", "start of the range: RFC 3339 time, SECONDS:INCREMENT or latest (default: one hour before --to)")
	fl.StringVar(&f.to, "to", "", "end of the range: RFC 3339 time, SECONDS:INCREMENT or latest (default latest)")
	fl.StringArrayVar(&f.q.NS, "ns", nil, "only these namespaces: db, db.*, db.coll or a pattern such as shop.ord* (repeatable); default all but local.* and config.*")
	fl.StringArrayVar(&f.q.Ops, "op", nil, "only these kinds: insert, update, delete, command (repeatable)")
	fl.StringVar(&f.id, "id", "", `only the operations on the document with this _id, as Extended JSON (42, '"abc"', '{"$oid": "..."}')`)
	fl.StringVar(&f.q.Shard, "shard", "", "the shard to read, when the repository holds several")
	fl.BoolVar(&f.summary, "summary", false, "count the operations per second, namespace and kind instead of listing them")
	fl.BoolVar(&f.json, "json", false, "print JSON Lines: one object per operation (or per summary row)")
	fl.BoolVar(&f.raw, "raw", false, "print the stored oplog entries themselves, as canonical Extended JSON (with --json: each operation as logged, in \"raw\")")
	return cmd
}

// query turns the command line into a validated query; every mistake is a
// usage error (exit 2).
func (f *oplogFlags) query(cmd *cobra.Command, rf *repoFlags) (browse.Query, error) {
	if err := rf.require(cmd); err != nil {
		return browse.Query{}, err
	}
	q := f.q
	var err error
	if q.From, q.To, q.ID, err = f.parse(cmd); err != nil {
		return q, err
	}
	if f.raw && f.summary {
		return q, usagef(cmd, "--raw prints entries; a --summary has none")
	}
	if err := q.Validate(); err != nil {
		return q, usagef(cmd, "%v", err)
	}
	return q, nil
}

func runOplog(cmd *cobra.Command, rf *repoFlags, f *oplogFlags) error {
	q, err := f.query(cmd, rf)
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	width := outputWidth(cmd.OutOrStdout())
	if f.summary {
		sum, err := browse.Summarize(ctx, r.Repository, q)
		if err != nil {
			return err
		}
		notes(cmd.ErrOrStderr(), sum.Range, sum.Warnings)
		if f.json {
			return jsonLines(out, sum.Rows, func(row browse.Row) any { return row.JSON() })
		}
		return printSummary(out, width, sum)
	}
	lp := &listPrinter{w: out, width: width, json: f.json, raw: f.raw}
	st, err := browse.List(ctx, r.Repository, q, lp.print)
	if err != nil {
		return err
	}
	notes(cmd.ErrOrStderr(), st.Range, st.Warnings)
	if !f.json && !f.raw {
		return lp.footer(st)
	}
	return nil
}

// notes tells, on stderr, of gaps in the range and indexes that could not
// be used.
func notes(w io.Writer, rng browse.Range, warnings []string) {
	for _, g := range rng.Gaps {
		fmt.Fprintf(w, "note: entries between %s and %s were lost before capture (a gap: %s)\n", tsText(g.Before), tsText(g.After), orDash(g.Reason))
	}
	for _, s := range warnings {
		fmt.Fprintf(w, "warning: %s\n", s)
	}
}

func tsText(ts optime.Timestamp) string {
	return fmt.Sprintf("%s (%s)", ts.Time().Format(time.RFC3339), ts)
}

func jsonLines[T any](w io.Writer, items []T, form func(T) any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	for _, it := range items {
		if err := enc.Encode(form(it)); err != nil {
			return err
		}
	}
	return nil
}

// listPrinter prints the operations as List returns them.
type listPrinter struct {
	w         io.Writer
	width     int
	json, raw bool
	lastEntry optime.Timestamp // --raw: the entry printed last
}

func (p *listPrinter) print(o browse.Op) error {
	switch {
	case p.json:
		b, err := json.Marshal(o.JSON(p.raw))
		if err == nil {
			_, err = fmt.Fprintf(p.w, "%s\n", b)
		}
		return err
	case p.raw:
		if o.TS == p.lastEntry { // one applyOps holds several selected operations
			return nil
		}
		p.lastEntry = o.TS
		_, err := fmt.Fprintln(p.w, browse.DocJSON(o.Entry))
		return err
	}
	id := "-" // a command writes no one document
	if o.ID.Type != 0 {
		id = browse.ValueJSON(o.ID)
	}
	line := fmt.Sprintf("%s  %s  %-7s  %s  %s", o.TS.Time().Format(time.RFC3339), o.TS, o.Kind, o.NS, id)
	if o.In != "" {
		line += "  (in " + o.In + ")"
	}
	_, err := fmt.Fprintln(p.w, cutEnd(line+"  "+browse.DocJSON(o.Change), p.width))
	return err
}

func (p *listPrinter) footer(st browse.ListStats) error {
	pr := newPrinter(p.w, p.width, 0)
	pr.wrap("", "  ", fmt.Sprintf("%s of shard %s from %s to %s; %d of %d segments read (the others' index shows nothing selected)",
		plural(int(st.Listed), "operation", "operations"), st.Shard, tsText(st.From), tsText(st.To), st.Segments-st.Skipped, st.Segments))
	return pr.err
}

// cutEnd cuts s to n display columns, ending with an ellipsis when cut.
func cutEnd(s string, n int) string {
	if displayWidth(s) <= n {
		return s
	}
	var b strings.Builder
	w := 0
	for _, r := range s {
		if w+runeWidth(r) > n-1 {
			break
		}
		b.WriteRune(r)
		w += runeWidth(r)
	}
	return b.String() + "…"
}

// printSummary prints the summary's table. A light day's summary has
// about a line per operation, so the table is written line by line with
// the widths found from its distinct namespaces, not through the restore
// printer's table (which measures every cell).
func printSummary(w io.Writer, width int, sum browse.Summary) error {
	p := newPrinter(w, width, 18)
	p.line(fmt.Sprintf("Operations per second of shard %s from %s to %s", sum.Shard, tsText(sum.From), tsText(sum.To)))
	if len(sum.Rows) == 0 {
		p.line("  no operation matches")
	}
	names := map[string]string{} // namespace -> as printed, padded
	nsW, countW := len("NAMESPACE"), len("COUNT")
	for _, r := range sum.Rows {
		if _, ok := names[r.NS]; !ok {
			names[r.NS] = r.NS
			nsW = max(nsW, displayWidth(r.NS))
		}
		countW = max(countW, len(fmt.Sprint(r.Count)))
	}
	const timeW, opW = 20, 7 // an RFC 3339 second; "command"
	if avail := width - 2 - timeW - 2 - 2 - opW - 2 - countW; nsW > avail {
		nsW = max(avail, minColumn)
		for ns := range names {
			names[ns] = shorten(ns, nsW)
		}
	}
	for ns, shown := range names {
		names[ns] = pad(shown, nsW)
	}
	if len(sum.Rows) > 0 {
		p.line(fmt.Sprintf("  %-*s  %s  %-*s  %s", timeW, "SECOND", pad("NAMESPACE", nsW), opW, "OP", "COUNT"))
	}
	var second uint32
	var stamp string
	for _, r := range sum.Rows {
		if r.Second != second || stamp == "" {
			second, stamp = r.Second, time.Unix(int64(r.Second), 0).UTC().Format(time.RFC3339)
		}
		if p.err == nil {
			_, p.err = fmt.Fprintf(w, "  %s  %s  %-*s  %d\n", stamp, names[r.NS], opW, r.Kind, r.Count)
		}
	}
	p.line(fmt.Sprintf("%s in %s; %s: %d counted from their index, %d read whole",
		plural(int(sum.Operations), "operation", "operations"), plural(len(sum.Rows), "line", "lines"),
		plural(sum.Segments, "segment", "segments"), sum.Indexed, sum.ReadWhole))
	return p.err
}

// pad pads s with spaces to n display columns.
func pad(s string, n int) string {
	if w := displayWidth(s); w < n {
		return s + strings.Repeat(" ", n-w)
	}
	return s
}
