package main

import (
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rewind-backup/rewind/internal/config"
	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/repo"
	"github.com/rewind-backup/rewind/internal/restore"
	"github.com/rewind-backup/rewind/internal/status"
	"github.com/rewind-backup/rewind/internal/verify"
)

// verifyFlags are the flags of `rewind verify`.
type verifyFlags struct {
	readData  bool
	restoreTo string
	// restoreToFile is --restore-to-file, a file holding --restore-to.
	restoreToFile string
	to            string
	parallel      int
	memory        int // MiB
	asJSON        bool
}

func newVerifyCmd() *cobra.Command {
	var rf repoFlags
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the repository and report what is damaged and what stays restorable",
		Long: `verify checks the repository's structure from a listing: every object a snapshot
manifest names exists, each timeline's segments are in order and a gap is recorded
between timelines, and nothing is orphaned (orphans are reported; prune removes
them). --read-data also reads every segment and chunk back: decrypted,
decompressed and checked against its checksums (an encrypted repository needs
--identity). --restore-to restores the newest point (or --to) into a scratch
deployment, which must be empty, and checks each collection against the counts
the snapshot recorded.

Every problem names the object, the restore points it breaks and what stays
restorable. The first line (HEALTHY or PROBLEMS) and the exit code fit cron:
0 healthy, 3 problems found, 1 verify could not run, 2 bad command line,
10 no repository, 11 locked. A repository that can restore nothing (empty,
or oplog without a snapshot) is a problem: a backup that restores nothing is
not healthy.`,
		Example: `  rewind verify --repo file:///var/lib/rewind
  rewind verify --repo s3://backups/rewind --identity key.txt --read-data --json
  rewind verify --repo file:///var/lib/rewind --restore-to mongodb://scratch:27017 --to 2026-11-25T09:30:00Z`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error { return runVerify(cmd, &rf, &f) },
	}
	rf.add(cmd)
	rf.addIdentity(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&f.readData, "read-data", false, "read back and check every segment and chunk")
	fl.StringVar(&f.restoreTo, "restore-to", "", "connection string of an EMPTY scratch deployment for a trial restore")
	fileFlag(cmd, "restore-to", &f.restoreToFile)
	fl.StringVar(&f.to, "to", "", "restore point of the trial restore (RFC 3339 time, SECONDS:INCREMENT or latest); default latest")
	countVar(cmd, &f.parallel, "parallel", verify.DefaultParallel, 1, "objects read at once with --read-data")
	countVar(cmd, &f.memory, "read-memory", verify.DefaultReadMemory>>20, 16,
		"MiB of object plaintext --read-data holds at once (segments count at 10x their stored size)")
	fl.BoolVar(&f.asJSON, "json", false, "print JSON")
	return cmd
}

func runVerify(cmd *cobra.Command, rf *repoFlags, f *verifyFlags) error {
	if err := rf.require(cmd); err != nil {
		return err
	}
	if err := readFileFlag(cmd, "restore-to", f.restoreToFile, &f.restoreTo); err != nil {
		return err
	}
	if f.to != "" && f.restoreTo == "" {
		return usagef(cmd, "--to needs --restore-to (the scratch deployment of the trial restore)")
	}
	if f.restoreTo != "" {
		if err := config.CheckMongoURI(f.restoreTo); err != nil {
			return usagef(cmd, "--restore-to: %v", err)
		}
	}
	when := restore.When{Latest: true}
	if f.to != "" {
		var err error
		if when, err = restore.ParseWhen(f.to); err != nil {
			return usagef(cmd, "%v", err)
		}
	}
	ctx := cmd.Context()
	r, err := rf.open(ctx)
	if err != nil {
		return err
	}
	defer r.Close()
	lock, err := r.Lock(ctx, repo.LockOptions{Kind: repo.LockShared, Purpose: "verify", Wait: 30 * time.Second})
	if err != nil {
		return fmt.Errorf("lock repository for reading: %w", err)
	}
	ctx, release := lock.Hold(ctx)
	defer release()

	rep, err := verify.Run(ctx, r.Repository, verify.Options{ReadData: f.readData, Parallel: f.parallel,
		ReadMemory: int64(f.memory) << 20})
	if err != nil {
		return repo.LostError(ctx, err)
	}
	var trial *verify.Trial
	if f.restoreTo != "" {
		client, err := connectTarget(ctx, f.restoreTo, 30*time.Second)
		if err != nil {
			return fmt.Errorf("%w (--restore-to)", err)
		}
		defer closeWithin(client.Disconnect)
		tr, err := verify.TrialRestore(ctx, r.Repository, client, when, slog.Default())
		if err != nil {
			return err
		}
		trial = &tr
		for _, p := range tr.Problems {
			rep.Findings = append(rep.Findings, verify.Finding{Severity: verify.Problem, Kind: "trial-restore", Message: p})
		}
	}
	if f.asJSON {
		if err := printJSON(cmd.OutOrStdout(), verifyJSONOf(rep, trial)); err != nil {
			return err
		}
	} else if err := printVerify(cmd.OutOrStdout(), rep, trial); err != nil {
		return err
	}
	if len(rep.Problems()) > 0 {
		// With --json the answer is all on stdout: exit 3, nothing on stderr.
		return &problemsError{msg: verifySummary(rep), quiet: f.asJSON}
	}
	return nil
}

// verifySummary is the one line that ends a verify that found problems: how
// many, and what to do.
func verifySummary(rep verify.Report) string {
	probs := rep.Problems()
	found := "verify found " + plural(len(probs), "problem", "problems")
	if len(probs) == 1 && probs[0].Kind == verify.NothingRestorable {
		return found + ": " + probs[0].Message
	}
	if len(rep.Remaining) == 0 {
		return found + " (listed above) and nothing is restorable: put the damaged objects back from a copy of the repository, or take a new snapshot with `rewind snapshot`"
	}
	return found + " (listed above): restore points outside the spans under RESTORABLE are lost unless the damaged objects are put back from a copy of the repository"
}

// verifyJSON is the JSON form of `rewind verify`.
type verifyJSON struct {
	Healthy   bool          `json:"healthy"`
	Problems  int           `json:"problems"`
	Objects   int           `json:"objects"`
	Bytes     int64         `json:"bytes"`
	ReadBytes int64         `json:"read_bytes"`
	ReadSecs  float64       `json:"read_seconds"`
	Findings  []findingJSON `json:"findings"`
	Windows   []rangeJSON   `json:"windows"`
	Remaining []rangeJSON   `json:"remaining"`
	Trial     *trialJSON    `json:"trial_restore,omitempty"`
}

type findingJSON struct {
	Severity string      `json:"severity"`
	Kind     string      `json:"kind"`
	Object   string      `json:"object,omitempty"`
	Message  string      `json:"message"`
	Breaks   []rangeJSON `json:"breaks"`
}

type rangeJSON struct {
	Shard    string     `json:"shard"`
	Snapshot string     `json:"snapshot,omitempty"`
	Timeline string     `json:"timeline,omitempty"`
	From     *status.TS `json:"from"`
	To       *status.TS `json:"to"`
}

type trialJSON struct {
	Point      *status.TS              `json:"point"`
	Snapshot   string                  `json:"snapshot"`
	Entries    int64                   `json:"entries"`
	Seconds    float64                 `json:"seconds"`
	Namespaces []verify.TrialNamespace `json:"namespaces"`
	Problems   []string                `json:"problems"`
}

func rangesJSON(rs []verify.Range) []rangeJSON {
	out := []rangeJSON{}
	for _, r := range rs {
		out = append(out, rangeJSON{Shard: r.Shard, Snapshot: r.Snapshot, Timeline: r.Timeline, From: status.ToTS(r.From), To: status.ToTS(r.To)})
	}
	return out
}

func verifyJSONOf(rep verify.Report, tr *verify.Trial) verifyJSON {
	out := verifyJSON{Healthy: rep.Healthy(), Problems: len(rep.Problems()), Objects: rep.Objects, Bytes: rep.Bytes,
		ReadBytes: rep.ReadBytes, ReadSecs: rep.ReadTime.Seconds(), Findings: []findingJSON{},
		Windows: rangesJSON(rep.Windows), Remaining: rangesJSON(rep.Remaining)}
	for _, f := range rep.Findings {
		out.Findings = append(out.Findings, findingJSON{Severity: f.Severity, Kind: f.Kind, Object: f.Object, Message: f.Message, Breaks: rangesJSON(f.Breaks)})
	}
	if tr != nil {
		out.Trial = &trialJSON{Point: status.ToTS(tr.Point), Snapshot: tr.Snapshot, Entries: tr.Entries, Seconds: tr.Duration.Seconds(),
			Namespaces: tr.Namespaces, Problems: append([]string{}, tr.Problems...)}
	}
	return out
}

func rangeText(r verify.Range) string {
	if r.From.IsZero() && r.To.IsZero() {
		return "every restore point of snapshot " + r.Snapshot
	}
	s := fmt.Sprintf("%s (%s) .. %s (%s)", r.From.Time().Format(time.RFC3339), r.From, r.To.Time().Format(time.RFC3339), r.To)
	if r.Snapshot != "" {
		s += " from snapshot " + r.Snapshot
	}
	return s
}

// breakLines groups the windows a problem breaks by range, so one damaged
// segment that every older snapshot replays through is one line.
func breakLines(bs []verify.Range) []string {
	var out []string
	seen := map[[2]optime.Timestamp]int{}
	var snaps [][]string
	for _, b := range bs {
		k := [2]optime.Timestamp{b.From, b.To}
		i, ok := seen[k]
		if !ok || b.Snapshot == "" || (b.From.IsZero() && b.To.IsZero()) {
			i = len(out)
			seen[k] = i
			r := b
			r.Snapshot = ""
			out = append(out, rangeText(r))
			snaps = append(snaps, nil)
			if b.From.IsZero() && b.To.IsZero() {
				out[i] = rangeText(b)
				continue
			}
		}
		if b.Snapshot != "" {
			snaps[i] = append(snaps[i], b.Snapshot)
		}
	}
	for i, ss := range snaps {
		switch len(ss) {
		case 0:
		case 1:
			out[i] += " from snapshot " + ss[0]
		default:
			out[i] += fmt.Sprintf(" from %d snapshots (%s .. %s)", len(ss), ss[0], ss[len(ss)-1])
		}
	}
	return out
}

func printVerify(w io.Writer, rep verify.Report, tr *verify.Trial) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	objects := plural(rep.Objects, "object", "objects")
	if rep.Healthy() {
		fmt.Fprintf(tw, "HEALTHY: %s (%s) checked", objects, humanBytes(rep.Bytes))
	} else {
		fmt.Fprintf(tw, "PROBLEMS: %d found in %s (%s)", len(rep.Problems()), objects, humanBytes(rep.Bytes))
	}
	if rep.ReadBytes > 0 {
		fmt.Fprintf(tw, "; read back %s in %s", humanBytes(rep.ReadBytes), rep.ReadTime.Round(time.Millisecond))
	}
	fmt.Fprintln(tw)
	for _, f := range rep.Findings {
		fmt.Fprintf(tw, "\n%s (%s)\t%s\n", f.Severity, f.Kind, f.Object)
		fmt.Fprintf(tw, "  %s\n", f.Message)
		for _, line := range breakLines(f.Breaks) {
			fmt.Fprintf(tw, "  breaks %s\n", line)
		}
	}
	fmt.Fprintf(tw, "\nRESTORABLE")
	if !rep.Healthy() {
		fmt.Fprintf(tw, " (what remains)")
	}
	fmt.Fprintln(tw)
	if len(rep.Remaining) == 0 {
		fmt.Fprintln(tw, "  nothing")
	}
	for _, r := range rep.Remaining {
		fmt.Fprintf(tw, "  shard %s: %s\n", r.Shard, rangeText(r))
	}
	if err := tw.Flush(); err != nil || tr == nil {
		return err
	}
	return printTrial(w, outputWidth(w), *tr)
}

// printTrial is the trial restore's table, fit to width as the restore
// plan is: long namespaces are shortened in the middle.
func printTrial(w io.Writer, width int, tr verify.Trial) error {
	p := newPrinter(w, width, 18)
	p.line("")
	p.wrap("", "  ", fmt.Sprintf("TRIAL RESTORE of %s (%s) from snapshot %s: %d entries replayed in %s", tr.Point.Time().Format(time.RFC3339), tr.Point,
		tr.Snapshot, tr.Entries, tr.Duration.Round(time.Millisecond)))
	if len(tr.Namespaces) == 0 {
		p.item(restore.EmptyNote)
		return p.err
	}
	rows := [][]string{{"NAMESPACE", "RECORDED", "LOADED", "NOW"}}
	for _, n := range tr.Namespaces {
		rows = append(rows, []string{n.Namespace, fmt.Sprint(n.Recorded), fmt.Sprint(n.Loaded), fmt.Sprint(n.Final)})
	}
	p.table("  ", rows, 0)
	return p.err
}
