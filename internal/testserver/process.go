package testserver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// process is one rewind-testserver child. Setpgid puts it in its own process
// group so a kill reaches anything it starts; Pdeathsig kills it if the test
// binary dies without running its cleanups.
type process struct {
	bin     string
	dir     string // holds data/ and stderr.log
	oplogMB int
	extra   []string // more flags: TLS
	addr    string   // host:port, fixed after the first start
	uri     string
	cmd     *exec.Cmd
	exited  chan struct{}
}

const readyTimeout = 60 * time.Second

func (p *process) start(addr string) error {
	logPath := filepath.Join(p.dir, "stderr.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open server log: %w", err)
	}
	defer logFile.Close()

	args := append([]string{
		"--addr", addr,
		"--dir", filepath.Join(p.dir, "data"),
		"--oplog-size-mb", fmt.Sprint(p.oplogMB)}, p.extra...)
	cmd := exec.Command(p.bin, args...)
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	// An os.Pipe rather than StdoutPipe: cmd.Wait (below, in its own
	// goroutine) must not close the pipe while it is being read.
	stdout, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("pipe server stdout: %w", err)
	}
	cmd.Stdout = w
	err = cmd.Start()
	w.Close()
	if err != nil {
		stdout.Close()
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})

	lines := make(chan string, 1)
	go func() {
		defer stdout.Close()
		r := bufio.NewReader(stdout)
		line, _ := r.ReadString('\n')
		lines <- strings.TrimSpace(line)
		io.Copy(io.Discard, r) // until the server exits: it must never block on stdout
	}()
	go func() {
		cmd.Wait()
		close(p.exited)
	}()

	select {
	case line := <-lines:
		if line == "" {
			<-p.exited
			return fmt.Errorf("server exited before it was ready (%s)%s", cmd.ProcessState, p.stderrTail())
		}
		u, err := url.Parse(line)
		if err != nil || u.Host == "" {
			p.kill()
			return fmt.Errorf("server printed %q, not a connection string%s", line, p.stderrTail())
		}
		p.uri, p.addr = line, u.Host
		return nil
	case <-time.After(readyTimeout):
		p.kill()
		return fmt.Errorf("server not ready after %s%s", readyTimeout, p.stderrTail())
	}
}

func (p *process) pid() int {
	if p.cmd == nil || p.cmd.Process == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

func (p *process) running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// stop asks the server to exit, escalating to SIGKILL of its group.
func (p *process) stop() error {
	if !p.running() {
		return nil
	}
	if err := syscall.Kill(p.pid(), syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal server: %w", err)
	}
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		p.kill()
		return errors.New("server ignored SIGTERM for 10 s; killed it")
	}
	if st := p.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("server exited with %s", st)
	}
	return nil
}

// kill ends the whole process group at once and waits for the child.
func (p *process) kill() {
	if !p.running() {
		return // its pid, and so its group id, may already belong to someone else
	}
	syscall.Kill(-p.pid(), syscall.SIGKILL)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
	}
}

func (p *process) stderrTail() string {
	b, err := os.ReadFile(filepath.Join(p.dir, "stderr.log"))
	if err != nil || len(b) == 0 {
		return ""
	}
	return "\nserver stderr (tail):\n" + tail(b, 3000)
}
