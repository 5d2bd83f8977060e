package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/retention"
	"github.com/rewind-backup/rewind/internal/status"
)

// pruneFlags are the flags of `rewind prune`.
type pruneFlags struct {
	configPath    string
	window, grace config.Duration
	tiers         [4]int // hourly, daily, weekly, monthly; from the config unless the flag is given
	dryRun        bool
	asJSON        bool
}

// tierFlags name the tiers of pruneFlags.tiers and their periods.
var tierFlags = [4][2]string{{"hourly", "hours"}, {"daily", "days"}, {"weekly", "weeks"}, {"monthly", "months"}}

func newPruneCmd() *cobra.Command {
	var rf repoFlags
	var f pruneFlags
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete what the retention policy no longer needs",
		Long: `prune applies the retention policy: every restore point inside the restore window
stays restorable (the newest snapshot at or before its start and all the oplog
after it are kept), snapshots picked by the hourly/daily/weekly/monthly rules stay
restorable to their consistent point (with the oplog of their own copy), the
newest snapshot always stays, and everything else goes, with the chunks of
snapshots that never got a manifest (orphans older than --grace).

The policy comes from --config (the agent's file, section retention:) and the
flags, which win; --config also gives the repository and identity when
neither the flags nor REWIND_REPO and REWIND_IDENTITY do. prune needs the repository's exclusive lock, so it is refused
while an agent runs (the agent prunes on its own every retention.prune_interval).
It prints what it deletes and which rule keeps or drops each snapshot and each
run of segments; --dry-run prints the same and changes nothing.`,
		Example: `  rewind prune --repo file:///var/lib/rewind --dry-run
  rewind prune --repo s3://backups/rewind --identity key.txt --config /etc/rewind.yaml
  rewind prune --repo file:///var/lib/rewind --restore-window 3d --daily 7 --weekly 4 --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runPrune(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.configPath, "config", "", "read the retention policy (and the repository and identity, unless given otherwise) from this agent config file")
	durationVar(cmd, &f.window, "restore-window", 0, fmt.Sprintf("every restore point this recent stays restorable (e.g. 7d, 36h); default from the config, else %s",
		config.Default().Retention.RestoreWindow))
	for i, t := range tierFlags {
		countVar(cmd, &f.tiers[i], t[0], 0, 0, fmt.Sprintf("keep the newest snapshot of each of the last N %s beyond the window; default from the config, else 0", t[1]))
	}
	durationVar(cmd, &f.grace, "grace", config.Duration(retention.DefaultGrace), "never treat objects newer than this as unneeded (a running snapshot may need them)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print what would be deleted and why; change nothing")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

// policy builds the policy from the config file's retention: and the
// flags given, which win.
func (f *pruneFlags) policy(cmd *cobra.Command, rc config.Retention) retention.Policy {
	p := retention.Policy{RestoreWindow: rc.RestoreWindow.Std(), Hourly: rc.Hourly, Daily: rc.Daily, Weekly: rc.Weekly,
		Monthly: rc.Monthly, Grace: f.grace.Std()}
	if cmd.Flags().Changed("restore-window") {
		p.RestoreWindow = f.window.Std()
	}
	for i, dst := range []*int{&p.Hourly, &p.Daily, &p.Weekly, &p.Monthly} {
		if cmd.Flags().Changed(tierFlags[i][0]) {
			*dst = f.tiers[i]
		}
	}
	return p
}

func runPrune(cmd *cobra.Command, rf *repoFlags, f *pruneFlags) error {
	cfg, err := loadConfig(f.configPath)
	if err != nil {
		return err
	}
	if err := cfg.Retention.Validate(); err != nil {
		return &usageError{fmt.Errorf("config %s: %w", f.configPath, err)}
	}
	rf.fileRepo, rf.fileIdentity = cfg.Repo, cfg.Identity.Reveal()
	if err := rf.require(cmd); err != nil {
		return err
	}
	p := f.policy(cmd, cfg.Retention)
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	kind, purpose := repo.LockExclusive, "prune"
	if f.dryRun {
		kind, purpose = repo.LockShared, "prune --dry-run"
	}
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: kind, Purpose: purpose})
	if err != nil {
		return fmt.Errorf("lock repository: %w", err)
	}
	ctx, release := lock.Hold(ctx)
	defer release()

	var res retention.Result
	if f.dryRun {
		res, err = retention.Plan(ctx, r.Repository, p, time.Now())
	} else {
		res, err = retention.Prune(ctx, r.Repository, lock, p, time.Now(), nil)
	}
	if err != nil {
		return repo.LostError(ctx, err)
	}
	if f.asJSON {
		return printJSON(cmd.OutOrStdout(), pruneJSONOf(res, f.dryRun))
	}
	return printPrune(cmd.OutOrStdout(), res, f.dryRun)
}

// pruneJSON is the JSON form of `rewind prune`.
type pruneJSON struct {
	DryRun        bool             `json:"dry_run"`
	Now           time.Time        `json:"now"`
	RestoreWindow string           `json:"restore_window"`
	Tiers         map[string]int   `json:"tiers"`
	Shards        []pruneShardJSON `json:"shards"`
	Orphans       []orphanJSON     `json:"orphans"`
	Deleted       map[string]int64 `json:"deleted"`
	// Held is what the object lock keeps until a later prune.
	Held []heldJSON `json:"held_by_object_lock"`
}

type heldJSON struct {
	What  string    `json:"what"`
	Until time.Time `json:"deletable_after"`
	Bytes int64     `json:"bytes,omitempty"`
}

type pruneShardJSON struct {
	Shard     string              `json:"shard"`
	Cutoff    *status.TS          `json:"window_start"`
	Snapshots []pruneSnapshotJSON `json:"snapshots"`
	Segments  []pruneRunJSON      `json:"segments"`
	Copies    []pruneCopyJSON     `json:"copies"`
	Promises  []promiseJSON       `json:"promised"`
}

type pruneSnapshotJSON struct {
	ID      string     `json:"id"`
	End     *status.TS `json:"end"`
	Keep    bool       `json:"keep"`
	Reasons []string   `json:"reasons"`
}

type pruneRunJSON struct {
	Timeline string     `json:"timeline"`
	First    *status.TS `json:"first"`
	Last     *status.TS `json:"last"`
	Count    int        `json:"segments"`
	Bytes    int64      `json:"bytes"`
	Keep     bool       `json:"keep"`
	Reason   string     `json:"reason"`
}

type pruneCopyJSON struct {
	From     string `json:"from_timeline"`
	To       string `json:"to_timeline"`
	Segments int    `json:"segments"`
	Reason   string `json:"reason"`
}

type promiseJSON struct {
	Snapshot string     `json:"snapshot"`
	Timeline string     `json:"timeline,omitempty"`
	From     *status.TS `json:"from"`
	To       *status.TS `json:"to"`
	Rule     string     `json:"rule"`
}

type orphanJSON struct {
	Key    string `json:"key"`
	Bytes  int64  `json:"bytes"`
	Reason string `json:"reason"`
}

func pruneJSONOf(res retention.Result, dry bool) pruneJSON {
	p := res.Policy
	out := pruneJSON{DryRun: dry, Now: res.Now.UTC(), RestoreWindow: config.Duration(p.RestoreWindow).String(),
		Tiers:  map[string]int{"hourly": p.Hourly, "daily": p.Daily, "weekly": p.Weekly, "monthly": p.Monthly},
		Shards: []pruneShardJSON{}, Orphans: []orphanJSON{}, Held: []heldJSON{},
		Deleted: map[string]int64{"snapshots": int64(res.DeletedSnapshots), "segments": int64(res.DeletedSegments),
			"orphans": int64(res.DeletedOrphans), "bytes": res.DeletedBytes, "copied_segments": int64(res.CopiedSegments)}}
	for _, d := range res.Decisions {
		s := pruneShardJSON{Shard: d.Shard, Cutoff: status.ToTS(d.Cutoff), Snapshots: []pruneSnapshotJSON{},
			Segments: []pruneRunJSON{}, Copies: []pruneCopyJSON{}, Promises: []promiseJSON{}}
		for _, sn := range d.Snapshots {
			s.Snapshots = append(s.Snapshots, pruneSnapshotJSON{ID: sn.ID, End: status.ToTS(sn.End), Keep: sn.Keep, Reasons: sn.Reasons})
		}
		for _, r := range d.Runs {
			s.Segments = append(s.Segments, pruneRunJSON{Timeline: r.Timeline, First: status.ToTS(r.First), Last: status.ToTS(r.Last),
				Count: len(r.Segments), Bytes: r.Bytes, Keep: r.Keep, Reason: r.Reason})
		}
		for _, ex := range d.Extracts {
			s.Copies = append(s.Copies, pruneCopyJSON{From: ex.From, To: ex.ID, Segments: len(ex.Segments), Reason: ex.Reason})
		}
		for _, pr := range d.Promises {
			s.Promises = append(s.Promises, promiseJSON{Snapshot: pr.Snapshot, Timeline: pr.Timeline, From: status.ToTS(pr.From), To: status.ToTS(pr.To), Rule: pr.Rule})
		}
		out.Shards = append(out.Shards, s)
	}
	for _, o := range res.Orphans {
		out.Orphans = append(out.Orphans, orphanJSON{Key: o.Key, Bytes: o.Size, Reason: o.Reason})
	}
	for _, h := range res.Held {
		out.Held = append(out.Held, heldJSON{What: h.What, Until: h.Until.UTC(), Bytes: h.Bytes})
	}
	return out
}

func keepWord(keep bool) string {
	if keep {
		return "keep"
	}
	return "DROP"
}

func printPrune(w io.Writer, res retention.Result, dry bool) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := res.Policy
	fmt.Fprintf(tw, "Retention: restore window %s, hourly %d, daily %d, weekly %d, monthly %d (now %s)\n",
		config.Duration(p.RestoreWindow), p.Hourly, p.Daily, p.Weekly, p.Monthly, res.Now.UTC().Format(time.RFC3339))
	var dropSnaps, dropSegs int
	var dropBytes int64
	for _, d := range res.Decisions {
		fmt.Fprintf(tw, "\nshard %s: the restore window starts at %s\n\nSNAPSHOTS\n", d.Shard, d.Cutoff.Time().Format(time.RFC3339))
		for _, s := range d.Snapshots {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", keepWord(s.Keep), s.ID, s.End.Time().Format(time.RFC3339), joinReasons(s.Reasons))
			if !s.Keep {
				dropSnaps++
			}
		}
		fmt.Fprintf(tw, "\nOPLOG SEGMENTS\n")
		for _, r := range d.Runs {
			fmt.Fprintf(tw, "  %s\t%s\t%s .. %s\t%d segments, %s\t%s\n", keepWord(r.Keep), r.Timeline, r.First.Time().Format(time.RFC3339),
				r.Last.Time().Format(time.RFC3339), len(r.Segments), humanBytes(r.Bytes), r.Reason)
			if !r.Keep {
				dropSegs += len(r.Segments)
				dropBytes += r.Bytes
			}
		}
		for _, ex := range d.Extracts {
			first, last := ex.Segments[0].First, ex.Segments[len(ex.Segments)-1].Last
			fmt.Fprintf(tw, "  copy\t%s\t%s .. %s\t%d segments\tto timeline %s: %s\n", ex.From, first.Time().Format(time.RFC3339),
				last.Time().Format(time.RFC3339), len(ex.Segments), ex.ID, ex.Reason)
		}
		fmt.Fprintf(tw, "\nPROMISED RESTORE POINTS (after the prune)\n")
		for _, pr := range d.Promises {
			fmt.Fprintf(tw, "  %s .. %s\tsnapshot %s\t%s\n", pr.From.Time().Format(time.RFC3339), pr.To.Time().Format(time.RFC3339), pr.Snapshot, pr.Rule)
		}
	}
	if len(res.Orphans) > 0 {
		fmt.Fprintf(tw, "\nORPHANS\n")
		for _, o := range res.Orphans {
			fmt.Fprintf(tw, "  DROP\t%s\t%s\t%s\n", o.Key, humanBytes(o.Size), o.Reason)
			dropBytes += o.Size
		}
	}
	if len(res.Held) > 0 {
		fmt.Fprintf(tw, "\nHELD BY OBJECT LOCK (a prune after the date deletes it)\n")
		for _, h := range res.Held {
			fmt.Fprintf(tw, "  later\t%s\tafter %s\n", h.What, h.Until.UTC().Format(time.RFC3339))
		}
	}
	verb := "deleted"
	if dry {
		verb = "would delete (dry run: nothing changed)"
	}
	fmt.Fprintf(tw, "\n%s %d snapshots, %d segments and %d orphans: %s\n", verb, dropSnaps, dropSegs, len(res.Orphans), humanBytes(dropBytes))
	return tw.Flush()
}

func joinReasons(rs []string) string {
	out := ""
	for i, r := range rs {
		if i > 0 {
			out += "; "
		}
		out += r
	}
	return out
}
