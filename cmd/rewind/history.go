package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/browse"
)

// historyFlags are the flags of `rewind history`, read into a
// browse.HistoryQuery.
type historyFlags struct {
	q browse.HistoryQuery
	pointFlags
	json bool
}

func newHistoryCmd() *cobra.Command {
	var rf repoFlags
	var f historyFlags
	cmd := &cobra.Command{
		Use:   "history",
		Short: "Every version of one document over time",
		Long: `history shows every version of one document: the timestamp and kind of the
operation that made it and the whole document after it (or "deleted").

It starts from the snapshot before --from (the document as that snapshot holds
it) and replays the oplog after it with the same translation a restore uses, in
memory, for this document only. Every operation at or after --from that writes
the document, and every drop or rename of its collection while it is there, is
one version; the first version is the document just before --from. A rename of
the collection is followed; a rename across databases that the server logs as
a copy through a temporary collection ends the history with the drop.

--from and --to take an RFC 3339 time (for --from the start of that second, for
--to its end), an oplog timestamp SECONDS:INCREMENT, or latest. --to defaults to
latest, --from to the end of the newest snapshot before --to: the history then
reads the oplog since that snapshot. --id is the _id as Extended JSON (42,
'"abc"', '{"$oid": "..."}').`,
		Example: `  rewind history --repo file:///var/lib/rewind --ns shop.orders --id 1042
  rewind history --repo ... --ns shop.orders --id '{"$oid": "656f1f77bcf86cd799439011"}' --from 2026-11-25T10:00:00Z --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runHistory(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.q.NS, "ns", "", "the document's collection, db.coll (required)")
	fl.StringVar(&f.id, "id", "", `the document's _id as Extended JSON: 42, '"abc"', '{"$oid": "..."}' (required)`)
	fl.StringVar(&f.from, "from", "", "list the versions made at or after this point: RFC 3339 time, SECONDS:INCREMENT or latest (default: the end of the newest snapshot before --to)")
	fl.StringVar(&f.to, "to", "", "list the versions made up to this point: RFC 3339 time, SECONDS:INCREMENT or latest (default latest)")
	fl.StringVar(&f.q.Shard, "shard", "", "the shard to read, when the repository holds several")
	fl.BoolVar(&f.json, "json", false, "print JSON Lines: one object per version")
	return cmd
}

// query turns the command line into a validated query; every mistake is a
// usage error (exit 2).
func (f *historyFlags) query(cmd *cobra.Command, rf *repoFlags) (browse.HistoryQuery, error) {
	if err := rf.require(cmd); err != nil {
		return browse.HistoryQuery{}, err
	}
	q := f.q
	var err error
	if q.From, q.To, q.ID, err = f.parse(cmd); err != nil {
		return q, err
	}
	if err := q.Validate(); err != nil {
		return q, usagef(cmd, "%v", err)
	}
	return q, nil
}

func runHistory(cmd *cobra.Command, rf *repoFlags, f *historyFlags) error {
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
	h, err := browse.History(ctx, r.Repository, q)
	if err != nil {
		return err
	}
	out := bufio.NewWriter(cmd.OutOrStdout())
	defer out.Flush()
	if f.json {
		return jsonLines(out, h.Versions, func(v browse.Version) any { return v.JSON() })
	}
	return printHistory(out, outputWidth(cmd.OutOrStdout()), h)
}

// printHistory prints each version's line (fit to width) and the whole
// document after it, indented Extended JSON (a long value runs past the
// width rather than lose its end).
func printHistory(w io.Writer, width int, h browse.DocHistory) error {
	p := newPrinter(w, width, 18)
	p.wrap("", "  ", fmt.Sprintf("History of _id %s in %s (shard %s): replayed from snapshot %s (flavor %s), %d oplog entries read",
		browse.ValueJSON(h.ID), h.NS, h.Shard, h.Snapshot, h.Flavor, h.Entries))
	for _, v := range h.Versions {
		what := v.Kind
		if what == "" {
			what = "start (the document just before the range)"
		}
		if v.In != "" {
			what += " (in " + v.In + ")"
		}
		if v.NS != h.NS {
			what += ", now in " + v.NS
		}
		p.line("")
		p.line(cutEnd(fmt.Sprintf("%s  %s  %s", v.TS.Time().Format(time.RFC3339), v.TS, what), width))
		if v.Doc == nil {
			if v.Kind == "" {
				p.line("    absent: no document with this _id at the start") // it may never have existed
			} else {
				p.line("    deleted")
			}
			continue
		}
		var b bytes.Buffer
		if err := json.Indent(&b, []byte(browse.DocJSON(v.Doc)), "    ", "  "); err != nil {
			return err
		}
		p.line("    " + b.String())
	}
	if len(h.Versions) == 1 {
		p.line("")
		p.line(fmt.Sprintf("No operation wrote it from %s to %s.", tsText(h.From), tsText(h.To)))
	}
	return p.err
}
