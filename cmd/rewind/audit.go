package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/api"
	"github.com/rewind-backup/rewind/internal/repo"
)

func newAuditCmd() *cobra.Command {
	var rf repoFlags
	var limit int
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "List who restored, undid, pruned or broke a lock, from the repository's audit entries",
		Long: `audit lists the repository's audit entries, newest first. rewind records one
for every restore (from the command line, the API, a drill or verify's trial
restore), undo, prune that deletes something, and lock removed (rewind unlock,
or a stale lock taken over): when, who (host, OS user, pid, the command or
"api" with the API token's fingerprint and the client's address), what (the
target without its password, the namespaces, the point) and the outcome
(started, ok, or failed and why; "started" that never ended is an action cut
short). Entries are never pruned. --json prints them as GET /api/v1/audit
answers. An encrypted repository's entries need --identity.`,
		Example: `  rewind audit --repo file:///var/lib/rewind
  rewind audit --repo s3://backups/rewind --identity key.txt --json --limit 1000 > audit-2026-11.json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := rf.require(cmd); err != nil {
				return err
			}
			ctx := cmd.Context()
			r, err := rf.open(ctx)
			if err != nil {
				return err
			}
			defer r.Close()
			entries, err := r.ReadAuditEntries(ctx, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), api.AuditView{Entries: entries})
			}
			return printAudit(cmd, entries)
		},
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	countVar(cmd, &limit, "limit", api.DefaultAuditLimit, 0, "list only the newest N entries (0: all)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the entries as JSON (GET /api/v1/audit's data)")
	return cmd
}

// printAudit is the table of entries, then their details one per line.
func printAudit(cmd *cobra.Command, entries []repo.AuditEntry) error {
	out := cmd.OutOrStdout()
	if len(entries) == 0 {
		fmt.Fprintln(out, "no audit entries: nothing was restored, undone, pruned or unlocked yet")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "STARTED\tACTION\tWHO\tTARGET\tNAMESPACES\tTO\tOUTCOME")
	for _, e := range entries {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Started.Format(time.RFC3339), e.Action, auditWho(e),
			orDash(e.Target), orDash(strings.Join(e.Namespaces, ",")), orDash(e.To), e.Outcome)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Detail != "" {
			fmt.Fprintf(out, "%s %s: %s\n", e.ID, e.Action, e.Detail)
		}
	}
	return nil
}

// auditWho is "user@host (rewind restore, pid 42)" or "user@host (api
// sha256:1a2b3c4d from 10.0.0.9:5000, pid 42)".
func auditWho(e repo.AuditEntry) string {
	via := e.Actor.Via
	if e.Actor.Token != "" {
		via += " token " + e.Actor.Token
	}
	if e.Actor.Remote != "" {
		via += " from " + e.Actor.Remote
	}
	return fmt.Sprintf("%s@%s (%s, pid %d)", e.User, e.Host, via, e.PID)
}
