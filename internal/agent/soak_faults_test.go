package agent_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// soakFault is one fault the soak injects.
type soakFault struct {
	name   string
	inject func(t *testing.T, s *soak)
}

// soakFaults are the faults of issue 17's lists that act on a running
// agent: process faults and network faults between the agent and its
// source. Disk and storage faults have their own tests.
var soakFaults = []soakFault{
	{"kill -9", func(t *testing.T, s *soak) { s.agent.kill() }},
	{"pause 5 s (SIGSTOP)", func(t *testing.T, s *soak) { s.pause(5 * time.Second) }},
	{"pause 15 s, past the lock's stale time", func(t *testing.T, s *soak) { s.pause(15 * time.Second) }},
	{"latency 500 ms, 8 s", func(t *testing.T, s *soak) { s.network(t, netFaults[0], 8*time.Second) }},
	{"bandwidth 100 KB/s, 8 s", func(t *testing.T, s *soak) { s.network(t, netFaults[1], 8*time.Second) }},
	{"connection resets every 2 s, 8 s", func(t *testing.T, s *soak) { s.network(t, netFaults[2], 8*time.Second) }},
	{"blackhole 15 s", func(t *testing.T, s *soak) { s.network(t, netFaults[3], 15*time.Second) }},
}

// inject runs one random fault, then waits until capture has caught up
// with the source again.
func (s *soak) inject(t *testing.T) {
	t.Helper()
	f := soakFaults[s.rng.IntN(len(soakFaults))]
	s.faults[f.name]++
	t.Logf("%s: %s", s.elapsed(), f.name)
	f.inject(t, s)
	ended := time.Now()
	newest := newestOplogTS(t, s.srv.Client())
	for lastDurable(t, s.url).Before(newest) {
		s.supervise(t)
		if time.Since(ended) > 90*time.Second {
			s.problems = append(s.problems, fmt.Sprintf("%s after %s: capture did not catch up within 90 s (durable %s, source %s); the agent's last lines:\n%s",
				s.elapsed(), f.name, lastDurable(t, s.url), newest, lastLines(s.agent.stderrString(), 4)))
			s.recover = append(s.recover, time.Since(ended))
			return
		}
		time.Sleep(250 * time.Millisecond)
	}
	s.recover = append(s.recover, time.Since(ended))
	t.Logf("%s: caught up %.1f s after %s ended", s.elapsed(), time.Since(ended).Seconds(), f.name)
}

// pause stops the agent with SIGSTOP for d, then lets it go on.
func (s *soak) pause(d time.Duration) {
	pid := s.agent.cmd.Process.Pid
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	time.Sleep(d) // the fault's length, not a synchronization
	_ = syscall.Kill(pid, syscall.SIGCONT)
}

// network applies f's toxics between the agent and its source for d.
func (s *soak) network(t *testing.T, f netFault, d time.Duration) {
	t.Helper()
	addToxics(t, s.proxy, f)
	for began, on := time.Now(), time.Now(); time.Since(began) < d; time.Sleep(50 * time.Millisecond) {
		switch {
		case f.pulse == 0:
		case time.Since(on) >= f.pulse:
			addToxics(t, s.proxy, f)
			on = time.Now()
		case time.Since(on) >= 300*time.Millisecond:
			s.proxy.Toxics.ResetToxics(context.Background())
		}
	}
	s.proxy.Toxics.ResetToxics(context.Background())
}

// checkRestore restores one random mark of the last two minutes (inside
// the 3-minute restore window) that is durable, and compares it with the
// oracle; the restored databases are dropped afterwards.
func (s *soak) checkRestore(t *testing.T) {
	t.Helper()
	durable := lastDurable(t, s.url)
	since := uint32(time.Now().Add(-2 * time.Minute).Unix())
	var picks []oracle.Mark
	for _, m := range s.w.rec.Marks[:len(s.w.rec.Marks):len(s.w.rec.Marks)] {
		if m.TS.T >= since && !durable.Before(m.TS) {
			picks = append(picks, m)
		}
	}
	if len(picks) == 0 {
		return
	}
	m := picks[s.rng.IntN(len(picks))]
	tag := fmt.Sprintf("r%d_", s.restores)
	s.restores++
	if err := restoreMark(t, s.url, s.w.dbs, m, s.target, tag); err != nil {
		s.losses++
		s.problems = append(s.problems, fmt.Sprintf("%s LOSS: %v", s.elapsed(), firstLines(err.Error(), 6)))
	}
	for i := range s.w.dbs {
		_ = s.target.Client().Database(s.target.DB(fmt.Sprintf("%s%d", tag, i))).Drop(context.Background())
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// sampleRSS records the agent's resident set size from /proc.
func (s *soak) sampleRSS() {
	pid := s.agent.cmd.Process.Pid
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return // the agent just exited: the supervisor restarts it
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kib, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			s.rss = append(s.rss, rssSample{at: time.Since(s.began), pid: pid, kib: kib})
		}
	}
}

// finish stops the workload, waits for capture to catch up, stops the
// agent and checks the repository: the source's oplog byte for byte since
// the oldest entry retention kept, no gap, verify --read-data healthy,
// and the newest mark restores exactly.
func (s *soak) finish(t *testing.T) {
	t.Helper()
	marks := s.w.finish(t)
	s.stats = <-s.w.stats
	newest := newestOplogTS(t, s.srv.Client())
	deadline := time.Now().Add(2 * time.Minute)
	for lastDurable(t, s.url).Before(newest) && time.Now().Before(deadline) {
		s.supervise(t)
		time.Sleep(250 * time.Millisecond)
	}
	if code := s.agent.terminate(t); code != 0 {
		s.problems = append(s.problems, fmt.Sprintf("the agent exited %d on SIGTERM", code))
	}
	got, h := repoEntries(t, s.url)
	s.captured = len(got)
	if len(h.Gaps) != 0 {
		s.losses++
		s.problems = append(s.problems, fmt.Sprintf("LOSS: %d gaps recorded though the oplog never rolled: %+v", len(h.Gaps), h.Gaps))
	}
	if len(got) == 0 {
		t.Fatal("the repository holds no oplog entry")
	}
	first, _ := optime.OfEntry(got[0])
	s.entries = "equal to the source's"
	if d := entriesDiff(got, sourceOplog(t, s.srv.Client(), first, newest)); d != "" {
		s.entries = "DIFFERENT from the source's"
		s.losses++
		s.problems = append(s.problems, "LOSS: "+d)
	}
	out, err := exec.Command(testbin.Rewind(t), "verify", "--repo", s.url, "--read-data").CombinedOutput()
	s.verify = firstLines(string(out), 1)
	if err != nil {
		s.losses++
		s.problems = append(s.problems, "verify --read-data: "+firstLines(string(out), 10))
	}
	s.restores++
	if err := restoreMark(t, s.url, s.w.dbs, marks[len(marks)-1], s.target, "final_"); err != nil {
		s.losses++
		s.problems = append(s.problems, "LOSS at the newest mark: "+firstLines(err.Error(), 6))
	}
	// A run shorter than rssVerdictAfter only reports the agent's RSS
	// growth: within one agent process a 3-minute run has seen the median
	// go from 52 to 101 MiB (the open question of docs/RELIABILITY.md,
	// not yet explained), and whether it levels off or is a leak takes a
	// longer run to tell. Longer runs fail on it.
	if grew := s.rssGrowth(); grew != "" && time.Since(s.began) >= rssVerdictAfter {
		s.problems = append(s.problems, grew)
		t.Error(grew)
	} else if grew != "" {
		s.rssNote = grew + " (reported, not failed: the verdict needs a run of 10 minutes or more)"
	}
}

// rssVerdictAfter is how long a soak must run for its RSS check to fail it.
const rssVerdictAfter = 10 * time.Minute

// rssGrowth says how the agent's RSS grew when its last third's median
// sample is over 1.5 times its first third's median plus 16 MiB. Medians,
// not peaks: a sample taken while a snapshot or a compaction runs, before
// the collector returns the memory, is a spike (a 3-minute CI run once saw
// 103 MiB against 54-65 MiB in its rerun), while a leak raises every
// sample after it.
func (s *soak) rssGrowth() string {
	n := len(s.rss)
	if n < 6 {
		return ""
	}
	median := func(xs []rssSample) int64 {
		kib := make([]int64, len(xs))
		for i, x := range xs {
			kib[i] = x.kib
		}
		slices.Sort(kib)
		return kib[len(kib)/2]
	}
	early, late := median(s.rss[:n/3]), median(s.rss[n-n/3:])
	if late > early*3/2+16<<10 {
		return fmt.Sprintf("the agent's RSS grew: median %d MiB in the first third, %d MiB in the last", early>>10, late>>10)
	}
	return ""
}

// summary is the soak's report, printed by scripts/soak.sh.
func (s *soak) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "rewind soak: %s, seed %d (REWIND_SOAK_SEED=%d to repeat the fault sequence)\n", s.elapsed(), s.seed, s.seed)
	fmt.Fprintf(&b, "machine            %d cores, load average at the end %s", runtime.NumCPU(), loadAverage())
	st := s.stats
	fmt.Fprintf(&b, "writes             %d (%d inserts, %d updates, %d replaces, %d deletes)\n",
		st.Writes(), st.Inserts, st.Updates, st.Replaces, st.Deletes)
	fmt.Fprintf(&b, "oplog entries      %d in the repository at the end (compacted; prune deletes whole segments), %s\n", s.captured, s.entries)
	fmt.Fprintf(&b, "restores checked   %d against the oracle\n", s.restores)
	total, names := 0, []string{}
	for name, n := range s.faults {
		total += n
		names = append(names, fmt.Sprintf("%s x%d", name, n))
	}
	sort.Strings(names)
	fmt.Fprintf(&b, "faults injected    %d: %s\n", total, strings.Join(names, "; "))
	fmt.Fprintf(&b, "caught up after    %s (median, max of the faults: from the fault's end until everything written before it was durable)\n", s.recoverySpread())
	fmt.Fprintf(&b, "agent restarts     %d\n", s.exits)
	fmt.Fprintf(&b, "losses             %d\n", s.losses)
	fmt.Fprintf(&b, "verify --read-data %s\n", s.verify)
	b.WriteString("agent RSS, MiB     ")
	for _, r := range s.rssByMinute() {
		b.WriteString(r + " ")
	}
	b.WriteString("\n")
	if s.rssNote != "" {
		fmt.Fprintf(&b, "note: %s\n", s.rssNote)
	}
	for _, p := range s.problems {
		fmt.Fprintf(&b, "problem: %s\n", p)
	}
	return b.String()
}

// loadAverage is /proc/loadavg's 1, 5 and 15 minute figures: the soak's
// timings mean little on a machine busy with other work.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:3], " ") + "\n"
}

// recoverySpread is the median and the largest catch-up time after a fault.
func (s *soak) recoverySpread() string {
	if len(s.recover) == 0 {
		return "none"
	}
	d := slices.Clone(s.recover)
	slices.Sort(d)
	return fmt.Sprintf("%.1f s, %.1f s", d[len(d)/2].Seconds(), d[len(d)-1].Seconds())
}

// rssByMinute is the peak RSS of each minute, as "m1:45".
func (s *soak) rssByMinute() []string {
	var out []string
	peak, minute := int64(0), 0
	for _, r := range s.rss {
		if m := int(r.at / time.Minute); m != minute {
			out = append(out, fmt.Sprintf("m%d:%d", minute+1, peak>>10))
			peak, minute = 0, m
		}
		peak = max(peak, r.kib)
	}
	return append(out, fmt.Sprintf("m%d:%d", minute+1, peak>>10))
}
