package server

import (
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"

	"github.com/rewind-backup/rewind/internal/storage"
)

// metrics answers GET /metrics: every captured deployment's rewind_
// metrics with a deployment label, the server's own, and the Go runtime's
// and the process's once.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	gs := prometheus.Gatherers{s.registry()}
	for _, d := range s.sorted() {
		if a := d.agent.Load(); a != nil {
			if g := a.Gatherer(); g != nil {
				gs = append(gs, labelled{name: d.spec.Name, inner: g})
			}
		}
	}
	promhttp.HandlerFor(gs, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// registry is the server's own: built once.
func (s *Server) registry() *prometheus.Registry {
	s.regOnce.Do(func() {
		reg := prometheus.NewRegistry()
		states := prometheus.NewDesc("rewind_server_deployments",
			"Deployments of this rewind server by state in this process (starting, capturing, standby, waiting, failed).",
			[]string{"state"}, nil)
		reqs := prometheus.NewDesc("rewind_storage_requests_total",
			"Requests this process made to the repositories' storage, by operation (put, get, stat, list, delete).",
			[]string{"op"}, nil)
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
			stateCollector{s: s, desc: states}, requestCollector{desc: reqs})
		s.reg = reg
	})
	return s.reg
}

// stateCollector counts the deployments by state at scrape time.
type stateCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	counts := map[string]float64{StateStarting: 0, StateCapturing: 0, StateStandby: 0, StateWaiting: 0, StateFailed: 0}
	for _, d := range c.s.sorted() {
		counts[d.view().State]++
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, n, state)
	}
}

// requestCollector exports storage.Requests.
type requestCollector struct{ desc *prometheus.Desc }

func (c requestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c requestCollector) Collect(ch chan<- prometheus.Metric) {
	for op, n := range storage.Requests() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), op)
	}
}

// labelled is one deployment's rewind_ metrics with its deployment label.
type labelled struct {
	name  string
	inner prometheus.Gatherer
}

func (l labelled) Gather() ([]*dto.MetricFamily, error) {
	fams, err := l.inner.Gather()
	var out []*dto.MetricFamily
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "rewind_") {
			continue // the runtime's and the process's: the server's own registry has them once
		}
		for _, m := range f.Metric {
			m.Label = append(m.Label, &dto.LabelPair{Name: proto.String("deployment"), Value: proto.String(l.name)})
			sort.Slice(m.Label, func(i, j int) bool { return m.Label[i].GetName() < m.Label[j].GetName() })
		}
		out = append(out, f)
	}
	return out, err
}
