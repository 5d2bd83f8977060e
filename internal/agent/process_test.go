package agent_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rewind-backup/rewind/internal/optime"
	"github.com/rewind-backup/rewind/internal/testbin"
)

// rewindBinary builds the rewind command once per test binary.
func rewindBinary(t *testing.T) string { return testbin.Rewind(t) }

// agentProcess is `rewind agent` run as a child process.
type agentProcess struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
	log    *lockedWriter // writes stderr
	done   chan struct{}
}

// stderrString is what the agent has logged so far (safe while it runs).
func (p *agentProcess) stderrString() string {
	p.log.mu.Lock()
	defer p.log.mu.Unlock()
	return p.stderr.String()
}

func startAgentProcess(t *testing.T, args ...string) *agentProcess {
	t.Helper()
	return startAgentProcessEnv(t, nil, args...)
}

// startAgentProcessEnv starts the agent with extra environment variables.
func startAgentProcessEnv(t *testing.T, env []string, args ...string) *agentProcess {
	t.Helper()
	cmd := exec.Command(rewindBinary(t), append([]string{"agent"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	p := &agentProcess{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan struct{})}
	p.log = &lockedWriter{w: p.stderr}
	cmd.Stderr = p.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { p.kill() })
	return p
}

func (p *agentProcess) kill() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// terminate sends SIGTERM and returns the exit code.
func (p *agentProcess) terminate(t *testing.T) int {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("agent ignored SIGTERM for 60 s; stderr:\n%s", p.stderr)
	}
	return p.cmd.ProcessState.ExitCode()
}

type lockedWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// statusJSON runs `rewind status --json` and decodes it.
func statusJSON(t *testing.T, repoURL string, env ...string) map[string]any {
	t.Helper()
	cmd := exec.Command(rewindBinary(t), "status", "--repo", repoURL, "--json")
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rewind status: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("status JSON: %v\n%s", err, out)
	}
	return m
}

// lastDurable reads last_durable from `rewind status --json`.
func lastDurable(t *testing.T, repoURL string, env ...string) optime.Timestamp {
	ld, ok := statusJSON(t, repoURL, env...)["last_durable"].(map[string]any)
	if !ok {
		return optime.Zero
	}
	if _, err := time.Parse(time.RFC3339, ld["time"].(string)); err != nil {
		t.Fatalf("last_durable.time is not RFC 3339: %v", err)
	}
	return optime.Timestamp{T: uint32(ld["t"].(float64)), I: uint32(ld["i"].(float64))}
}
