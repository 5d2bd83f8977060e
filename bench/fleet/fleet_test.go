// Package fleet measures what an idle deployment costs rewind server: the
// process's resident memory, its CPU and its storage requests, with many
// deployments captured at once, against the same server with none
// (measured in the same run).
//
//	go test ./bench/fleet -run '^$' -bench Idle -benchtime 1x
//
// REWIND_BENCH_DEPLOYMENTS (default 50), REWIND_BENCH_SOURCES (test
// servers the deployments share, default 10) and REWIND_BENCH_IDLE_SECONDS
// (default 60) tune it.
package fleet

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rewind-backup/rewind/bench/benchtool"
	"github.com/rewind-backup/rewind/internal/testbin"
	"github.com/rewind-backup/rewind/internal/testserver"
)

const token = "bench-token"

// usage is what the process used over an idle period.
type usage struct {
	rssMiB   float64 // resident memory at the end
	cpuPct   float64 // of one core, averaged over the period
	requests float64 // storage requests during the period
	minutes  float64
}

func BenchmarkIdleFleet(b *testing.B) {
	n := benchtool.EnvInt("REWIND_BENCH_DEPLOYMENTS", 50)
	nsrc := benchtool.EnvInt("REWIND_BENCH_SOURCES", 10)
	idle := time.Duration(benchtool.EnvInt("REWIND_BENCH_IDLE_SECONDS", 60)) * time.Second
	srcs := make([]*testserver.Server, nsrc)
	for i := range srcs {
		srcs[i] = testserver.Start(b)
	}
	for range b.N {
		empty := measure(b, 0, srcs, idle)
		full := measure(b, n, srcs, idle)
		rss := (full.rssMiB - empty.rssMiB) / float64(n)
		cpu := (full.cpuPct - empty.cpuPct) / float64(n)
		reqs := (full.requests/full.minutes - empty.requests/empty.minutes) / float64(n)
		fmt.Printf("server with no deployment: RSS %.1f MiB, CPU %.3f %% of a core, %.1f storage requests/min\n",
			empty.rssMiB, empty.cpuPct, empty.requests/empty.minutes)
		fmt.Printf("server with %d idle deployments on %d sources: RSS %.1f MiB, CPU %.3f %% of a core, %.1f storage requests/min\n",
			n, nsrc, full.rssMiB, full.cpuPct, full.requests/full.minutes)
		fmt.Printf("per idle deployment: RSS %.2f MiB (goal <= 16), CPU %.4f %% of a core (goal <= 0.2), %.2f storage requests/min\n",
			rss, cpu, reqs)
		b.ReportMetric(rss, "MiB-RSS/deployment")
		b.ReportMetric(cpu, "%core/deployment")
		b.ReportMetric(reqs, "requests/min/deployment")
	}
}

// measure starts rewind server with n deployments spread over srcs, waits
// until every one captures and its base snapshot is taken, then measures
// an idle period.
func measure(b *testing.B, n int, srcs []*testserver.Server, idle time.Duration) usage {
	dir := b.TempDir()
	var f strings.Builder
	fmt.Fprintf(&f, "api: {listen: \"127.0.0.1:0\", token: %s}\nstate_dir: %s\nlog: {level: warn}\ndeployments:\n", token, filepath.Join(dir, "state"))
	for i := range n {
		fmt.Fprintf(&f, "  - {name: d%02d, source: '%s', repo: 'file://%s/d%02d', capture: {spool_dir: '%s/spool%02d'}}\n",
			i, srcs[i%len(srcs)].URI(), dir, i, dir, i)
	}
	path := filepath.Join(dir, "server.yaml")
	if err := os.WriteFile(path, []byte(f.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(testbin.Rewind(b), "server", "--config", path, "--log-level", "info")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	addr := listenAddr(b, bufio.NewScanner(stderr))
	waitCapturing(b, addr, n)
	// The base snapshots, and the one-time listings after them (the
	// schedule, the gap alert at its next check).
	time.Sleep(20 * time.Second)
	cpu0, req0, t0 := benchtool.ProcCPU(b, cmd.Process.Pid), requests(b, addr), time.Now()
	time.Sleep(idle)
	cpu1, req1, t1 := benchtool.ProcCPU(b, cmd.Process.Pid), requests(b, addr), time.Now()
	return usage{rssMiB: float64(benchtool.ProcMemory(cmd.Process.Pid, "VmRSS")) / (1 << 20), cpuPct: 100 * (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds(),
		requests: req1 - req0, minutes: t1.Sub(t0).Minutes()}
}

var listening = regexp.MustCompile(`msg="api listening" addr=(\S+)`)

func listenAddr(b *testing.B, sc *bufio.Scanner) string {
	addr := make(chan string, 1)
	go func() {
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addr <- m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return a
	case <-time.After(time.Minute):
		b.Fatal("rewind server did not listen within a minute")
		return ""
	}
}

// waitCapturing waits until n deployments capture and have a restore window.
func waitCapturing(b *testing.B, addr string, n int) {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		var env struct {
			Data []struct {
				State         string `json:"state"`
				RestoreWindow any    `json:"restore_window"`
			} `json:"data"`
		}
		get(b, addr, "/api/v1/deployments", func(r *http.Response) { _ = json.NewDecoder(r.Body).Decode(&env) })
		ready := 0
		for _, d := range env.Data {
			if d.State == "capturing" && d.RestoreWindow != nil {
				ready++
			}
		}
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deployments capture after 5 min", ready, n)
		}
		time.Sleep(time.Second)
	}
}

// requests sums rewind_storage_requests_total from /metrics (and logs
// them by operation).
func requests(b *testing.B, addr string) float64 {
	var total float64
	ops := map[string]float64{}
	defer func() { b.Logf("storage requests so far: %v", ops) }()
	get(b, addr, "/metrics", func(r *http.Response) {
		p := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := p.TextToMetricFamilies(r.Body)
		if err != nil {
			b.Fatal(err)
		}
		for _, m := range fams["rewind_storage_requests_total"].GetMetric() {
			total += m.GetCounter().GetValue()
			ops[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	})
	return total
}

func get(b *testing.B, addr, path string, read func(*http.Response)) {
	req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	read(resp)
}
