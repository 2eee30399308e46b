package deploytest

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type panel struct {
	ID         int                      `json:"id"`
	Type       string                   `json:"type"`
	Title      string                   `json:"title"`
	Datasource json.RawMessage          `json:"datasource"`
	GridPos    struct{ H, W, X, Y int } `json:"gridPos"`
	Targets    []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []struct {
			Name, Type, Query string
		} `json:"list"`
	} `json:"templating"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	var d dashboard
	dec := json.NewDecoder(strings.NewReader(readFile(t, "deploy", "grafana", "dashboards", "flowsentry.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	return d
}

// TestGrafanaDashboard: valid JSON, unique panel ids, a Prometheus
// datasource variable, and only metrics the Go source registers.
func TestGrafanaDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Error("dashboard needs uid and title (provisioning keys on uid)")
	}
	hasDS := false
	for _, v := range d.Templating.List {
		hasDS = hasDS || (v.Name == "datasource" && v.Type == "datasource" && v.Query == "prometheus")
	}
	if !hasDS {
		t.Error("no datasource variable of type prometheus")
	}
	ids := map[int]bool{}
	exprs := 0
	for _, p := range allPanels(d.Panels) {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: gridPos %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if !strings.Contains(string(p.Datasource), "${datasource}") {
			t.Errorf("panel %q: datasource %s, want the ${datasource} variable", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkMetrics(t, fmt.Sprintf("panel %q %s", p.Title, tg.RefID), tg.Expr)
			exprs++
		}
	}
	if exprs < 20 {
		t.Errorf("only %d queries", exprs)
	}
}

// TestGrafanaQueriesParse hands every panel query to promtool as a recording
// rule, so PromQL syntax errors fail here rather than on a dashboard.
func TestGrafanaQueriesParse(t *testing.T) {
	promtool := tool(t, "promtool", true)
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	for _, p := range allPanels(loadDashboard(t).Panels) {
		for _, tg := range p.Targets {
			expr := strings.ReplaceAll(tg.Expr, "$__rate_interval", "5m")
			rules = append(rules, rule{Record: fmt.Sprintf("panel_%d_%s", p.ID, tg.RefID), Expr: expr})
		}
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	file := writeTemp(t, "dashboard.rules.yml", string(out))
	if res, err := exec.Command(promtool, "check", "rules", file).CombinedOutput(); err != nil {
		t.Errorf("dashboard queries: %v\n%s", err, res)
	}
}

// TestGrafanaProvisioning: the provider path is where compose mounts the dashboards.
func TestGrafanaProvisioning(t *testing.T) {
	var prov struct {
		Providers []struct {
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "grafana", "provisioning", "dashboards", "flowsentry.yaml")), &prov); err != nil {
		t.Fatal(err)
	}
	compose := readFile(t, "deploy", "compose", "compose.yaml")
	for _, p := range prov.Providers {
		if !strings.Contains(compose, "../grafana/dashboards:"+p.Options.Path) {
			t.Errorf("provider path %s is not where compose mounts deploy/grafana/dashboards", p.Options.Path)
		}
	}
	if len(prov.Providers) == 0 {
		t.Error("no dashboard provider")
	}
}

func allPanels(ps []panel) []panel {
	var out []panel
	for _, p := range ps {
		out = append(out, p)
		out = append(out, allPanels(p.Panels)...)
	}
	return out
}
