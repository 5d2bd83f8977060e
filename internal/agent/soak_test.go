package agent_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/oracle"
	"github.com/rewind-backup/rewind/internal/testserver"
	"github.com/rewind-backup/rewind/internal/workload"
)

// EnvSoakMinutes runs TestSoak for that many minutes (scripts/soak.sh sets
// it); EnvSoakSummary names the file the summary is written to.
const (
	EnvSoakMinutes = "REWIND_SOAK_MINUTES"
	EnvSoakSummary = "REWIND_SOAK_SUMMARY"
	EnvSoakSeed    = "REWIND_SOAK_SEED"
)

// soakAgentConfig is the agent's configuration in the soak: everything
// that runs once a day in production runs every few tens of seconds here.
const soakAgentConfig = `source: %q
repo: %q
capture:
  flush_interval: 200ms
  spool_dir: %q
  compact_interval: 30s
  compact_after: 40s
snapshot:
  every: 1m
retention:
  prune_interval: 20s
  restore_window: 3m
api:
  listen: ""
alerts:
  check_interval: 1s
  source_unreachable_for: 3s
lock:
  refresh: 2s
  stale_after: 10s
`

// TestSoak is scripts/soak.sh: for REWIND_SOAK_MINUTES, a workload writes
// while `rewind agent` (a child process, restarted whenever it exits, as
// systemd or Kubernetes would) captures it through a fault proxy, takes a
// snapshot every minute, prunes every 20 s to a 3-minute window and
// compacts segments. Every 15-30 s one random fault is injected (kill -9,
// a pause shorter or longer than the lock's stale time, 500 ms latency,
// 100 KB/s, connection resets, a 15 s blackhole); after each, a random
// restore point from the last two minutes is restored with `rewind
// restore` and compared with the oracle. At the end the repository must
// hold the source's oplog byte for byte with no gap, `verify --read-data`
// must pass, and the agent's RSS must not grow. The summary is printed by
// the script.
func TestSoak(t *testing.T) {
	minutes, _ := strconv.ParseFloat(os.Getenv(EnvSoakMinutes), 64)
	if minutes <= 0 {
		t.Skipf("the soak runs from scripts/soak.sh (%s unset)", EnvSoakMinutes)
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv(EnvSoakSeed), 10, 64); err == nil {
		seed = s
	}
	s := startSoak(t, seed)
	s.run(t, time.Duration(minutes*float64(time.Minute)))
	s.finish(t)
	summary := s.summary()
	t.Log("\n" + summary)
	if path := os.Getenv(EnvSoakSummary); path != "" {
		must(t, os.WriteFile(path, []byte(summary), 0o644))
	}
	if s.losses > 0 {
		t.Fatalf("%d losses (restores that differed from the oracle or entries missing)", s.losses)
	}
}

// soak is one soak run's moving parts and its counts.
type soak struct {
	seed   uint64
	rng    *rand.Rand
	srv    *testserver.Server
	target *testserver.Server
	proxy  *faultProxy
	url    string
	args   []string
	agent  *agentProcess
	w      *faultWorkload

	began    time.Time
	rssNote  string // the RSS growth of a run too short for a verdict
	faults   map[string]int
	exits    int // agent exits the supervisor saw, killed ones included
	restores int
	losses   int
	problems []string
	rss      []rssSample
	recover  []time.Duration // per fault: its end until capture caught up
	stats    workload.Stats
	captured int    // oplog entries in the repository at the end
	verify   string // verify --read-data's first line
	entries  string // how the repository's entries compare with the source's
}

type rssSample struct {
	at  time.Duration
	pid int
	kib int64
}

func startSoak(t *testing.T, seed uint64) *soak {
	t.Helper()
	s := &soak{seed: seed, rng: rand.New(rand.NewPCG(seed, 17)), faults: map[string]int{}}
	s.srv = testserver.Start(t)
	if strings.Contains(s.srv.Host(), ",") {
		t.Skipf("the source URI names several hosts (%s): the fault proxy fronts one", s.srv.Host())
	}
	s.target = testserver.Start(t)
	s.proxy = startProxy(t, s.srv.Host())
	s.url = newRepo(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "rewind.yaml")
	must(t, os.WriteFile(cfg, fmt.Appendf(nil, soakAgentConfig,
		proxiedURI(s.srv, s.proxy.Listen), s.url, filepath.Join(dir, "spool")), 0o600))
	s.args = []string{"--config", cfg}
	s.w = startFaultWorkload(t, s.srv, openRepo(t, s.url), func(c *workload.Config, r *oracle.Recorder) {
		c.Seed, c.Prefix, c.Duration, c.Rate = seed, s.srv.DB("soak"), 24*time.Hour, 30
		r.Every = 15 // a mark every 5 s
	})
	s.agent = startAgentProcess(t, s.args...)
	s.began = time.Now()
	return s
}

// run injects faults and checks restores until d has passed.
func (s *soak) run(t *testing.T, d time.Duration) {
	t.Helper()
	end := s.began.Add(d)
	nextFault := time.Now().Add(s.jitter(10, 20))
	nextRSS := time.Now()
	for time.Now().Before(end) {
		s.supervise(t)
		if time.Now().After(nextRSS) {
			s.sampleRSS()
			nextRSS = time.Now().Add(10 * time.Second)
		}
		if time.Now().After(nextFault) && time.Until(end) > 20*time.Second {
			s.inject(t)
			s.checkRestore(t)
			nextFault = time.Now().Add(s.jitter(15, 30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (s *soak) jitter(lo, hi int) time.Duration {
	return time.Duration(lo+s.rng.IntN(hi-lo+1)) * time.Second
}

// supervise restarts the agent when it has exited, as a service manager would.
func (s *soak) supervise(t *testing.T) {
	select {
	case <-s.agent.done:
		s.exits++
		if s.agent.cmd.ProcessState.ExitCode() != -1 { // not our kill -9
			s.problems = append(s.problems, fmt.Sprintf("%s agent exited with %d: %s",
				s.elapsed(), s.agent.cmd.ProcessState.ExitCode(), lastLine(s.agent.stderrString())))
		}
		s.agent = startAgentProcess(t, s.args...)
	default:
	}
}

func (s *soak) elapsed() time.Duration { return time.Since(s.began).Round(time.Second) }

func lastLine(s string) string { return lastLines(s, 1) }

// lastLines is the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
