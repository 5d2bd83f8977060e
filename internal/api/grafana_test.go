package api_test

import (
	"encoding/json"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/rewind-backup/rewind/internal/testserver"
)

// dashboardPath is the Grafana dashboard shipped for operators (README
// "Deploying").
const dashboardPath = "../../deploy/grafana/rewind.json"

// Every metric the Grafana dashboard queries, in its panels and in its
// template variables, is one the agent's /metrics exposes: a renamed or
// misspelt metric would leave a panel silently empty.
func TestGrafanaDashboardQueriesExposedMetrics(t *testing.T) {
	queried := dashboardMetrics(t, dashboardPath)
	fams := scrape(t, startAgent(t, agentConfig(t, testserver.Start(t))))
	var missing []string
	for _, name := range queried {
		if !exposed(fams, name) {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s queries metrics that /metrics does not expose: %s", dashboardPath, strings.Join(missing, ", "))
	}
}

// Every rewind_ metric the agent exposes has a panel: a new metric gets
// one in deploy/grafana/rewind.json.
func TestGrafanaDashboardCoversEveryMetric(t *testing.T) {
	queried := map[string]bool{}
	for _, name := range dashboardMetrics(t, dashboardPath) {
		queried[name] = true
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			queried[strings.TrimSuffix(name, suffix)] = true
		}
	}
	fams := scrape(t, startAgent(t, agentConfig(t, testserver.Start(t))))
	var unshown []string
	for name := range fams {
		if strings.HasPrefix(name, "rewind_") && !queried[name] {
			unshown = append(unshown, name)
		}
	}
	sort.Strings(unshown)
	if len(unshown) > 0 {
		t.Fatalf("/metrics exposes metrics that %s shows nowhere: %s", dashboardPath, strings.Join(unshown, ", "))
	}
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
