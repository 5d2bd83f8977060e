package server_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/rewind-backup/rewind/internal/testserver"
)

// dashboardPath is the Grafana dashboard shipped for operators (README
// "Deploying").
const dashboardPath = "../../deploy/grafana/rewind.json"

// The Grafana dashboard and rewind server's /metrics agree: every metric
// the dashboard queries (in its panels and its template variables) is one
// /metrics exposes, so no panel stays silently empty after a rename; and
// every rewind_ metric exposed, the deployments' (with their deployment
// label) and the server's own, has a panel.
func TestGrafanaDashboardMatchesMetrics(t *testing.T) {
	f := startFleet(t, header(filepath.Join(t.TempDir(), "state"))+entry("one", testserver.Start(t), t.TempDir()))
	f.waitCapturing(60*time.Second, "one")
	fams := f.scrape()
	queried := dashboardMetrics(t, dashboardPath)
	var missing []string
	for _, name := range queried {
		if !exposed(fams, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s queries metrics that /metrics does not expose: %s", dashboardPath, strings.Join(missing, ", "))
	}
	shown := map[string]bool{}
	for _, name := range queried {
		shown[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			shown[strings.TrimSuffix(name, suffix)] = true
		}
	}
	var unshown []string
	for name := range fams {
		if strings.HasPrefix(name, "rewind_") && !shown[name] {
			unshown = append(unshown, name)
		}
	}
	sort.Strings(unshown)
	if len(unshown) > 0 {
		t.Errorf("/metrics exposes metrics that %s shows nowhere: %s", dashboardPath, strings.Join(unshown, ", "))
	}
	lag := fams["rewind_capture_lag_seconds"]
	if lag == nil || len(lag.GetMetric()) != 1 || !hasLabel(lag.GetMetric()[0], "deployment", "one") {
		t.Errorf("rewind_capture_lag_seconds does not carry deployment=\"one\": %v", lag)
	}
}

// hasLabel says whether m carries the label name=value.
func hasLabel(m *dto.Metric, name, value string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == name && l.GetValue() == value {
			return true
		}
	}
	return false
}

// scrape reads the server's /metrics.
func (f *fleet) scrape() map[string]*dto.MetricFamily {
	f.t.Helper()
	req, err := http.NewRequest("GET", "http://"+f.addr+"/metrics", nil)
	must(f.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	must(f.t, err)
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	must(f.t, err)
	return fams
}

// exposed says whether the scrape has the series name: a family of that
// name, or the _bucket, _sum or _count series of a histogram or summary.
func exposed(fams map[string]*dto.MetricFamily, name string) bool {
	if _, ok := fams[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		base, ok := strings.CutSuffix(name, suffix)
		if !ok {
			continue
		}
		if f, ok := fams[base]; ok {
			switch f.GetType() {
			case dto.MetricType_HISTOGRAM:
				return true
			case dto.MetricType_SUMMARY:
				return suffix != "_bucket"
			}
		}
	}
	return false
}

var (
	// quoted is a PromQL string: label values and regexps, not metric names.
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	metricName = regexp.MustCompile(`\brewind_[a-zA-Z0-9_]*[a-zA-Z0-9]`)
)

// dashboardMetrics reads a Grafana dashboard and returns, sorted and once
// each, the rewind_ series names its queries use: every panel target's
// expr (rows' nested panels included) and every template variable's query.
func dashboardMetrics(t *testing.T, path string) []string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the dashboard: %v", err)
	}
	var dash struct {
		Panels     []dashPanel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string          `json:"name"`
				Type  string          `json:"type"`
				Query json.RawMessage `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	var exprs []string
	var walk func([]dashPanel)
	walk = func(ps []dashPanel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" {
					t.Fatalf("%s: panel %q has a target with no expr", path, p.Title)
				}
				exprs = append(exprs, tg.Expr)
			}
			if p.Type != "row" && len(p.Targets) == 0 {
				t.Fatalf("%s: panel %q queries nothing", path, p.Title)
			}
			walk(p.Panels)
		}
	}
	walk(dash.Panels)
	for _, v := range dash.Templating.List {
		if v.Type != "query" {
			continue
		}
		var q struct { // Grafana writes the query as an object or, older, a string
			Query string `json:"query"`
		}
		if json.Unmarshal(v.Query, &q) != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("%s: template variable %s: query is neither a string nor an object: %v", path, v.Name, err)
			}
		}
		exprs = append(exprs, q.Query)
	}
	var names []string
	for _, e := range exprs {
		names = append(names, metricName.FindAllString(quoted.ReplaceAllString(e, `""`), -1)...)
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		t.Fatalf("%s queries no rewind_ metric", path)
	}
	return names
}

// dashPanel is the part of a Grafana panel the test reads.
type dashPanel struct {
	Title   string `json:"title"`
	Type    string `json:"type"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashPanel `json:"panels"`
}
