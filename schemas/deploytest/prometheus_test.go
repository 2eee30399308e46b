package deploytest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

const rulesPath = "deploy/prometheus/rules/flowsentry.rules.yml"

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var rf ruleFile
	dec := yaml.NewDecoder(strings.NewReader(readFile(t, rulesPath)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s: %v", rulesPath, err)
	}
	return rf
}

// TestAlertRules: real metrics only, a severity, and a runbook section in
// docs/operations.md for every alert; every pipeline failure named in issue 7
// has a rule.
func TestAlertRules(t *testing.T) {
	rf := loadRules(t)
	anchors := Anchors(readFile(t, "docs", "operations.md"))
	used := map[string]bool{}
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			where := g.Name + "/" + r.Alert
			if r.Alert == "" {
				t.Errorf("%s: recording rule or unnamed alert in the alert file", where)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			for _, n := range checkMetrics(t, where, r.Expr) {
				used[n] = true
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", where, s)
			}
			if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
				t.Errorf("%s: summary and description annotations required", where)
			}
			rb := r.Annotations["runbook_url"]
			file, anchor, _ := strings.Cut(rb, "#")
			if file != "docs/operations.md" || !anchors[anchor] {
				t.Errorf("%s: runbook_url %q: want docs/operations.md#<a heading of that file>", where, rb)
			}
			if anchor != Slug(r.Alert) {
				t.Errorf("%s: runbook anchor %q, want the alert's own section #%s", where, anchor, Slug(r.Alert))
			}
		}
	}
	// What issue 7 asks the rules to cover, by the series that reveal it.
	for what, metric := range map[string]string{
		"services down":               "up",
		"collector socket drops":      "collector_socket_drops_total",
		"collector queue/Kafka drops": "collector_flows_dropped_total",
		"decode errors":               "collector_decode_errors_total",
		"template misses":             "collector_template_misses_total",
		"detector late flows":         "detector_flows_dropped_total",
		"detector consumer lag":       "detector_watermark_seconds",
		"notification failures":       "flowsentry_alerter_notifications_total",
		"notification dead letters":   "flowsentry_alerter_dead_letters_total",
		"sink insert failures":        "flowsentry_sink_insert_retries_total",
		"sink ClickHouse down":        "flowsentry_sink_clickhouse_up",
		"sink consumer lag":           "flowsentry_sink_consumer_lag",
		"sink dead letters":           "flowsentry_sink_dead_letters_total",
		"alerter consumer backlog":    "flowsentry_alerter_uncommitted_messages",
	} {
		if !used[metric] {
			t.Errorf("no alert covers %s (%s)", what, metric)
		}
	}
}

// TestPromtool runs Prometheus' own checker and the rules' unit tests
// (deploy/prometheus/tests), which feed series and assert which alerts fire.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool", true)
	for _, args := range [][]string{
		{"check", "rules", rulesPath},
		{"check", "config", "deploy/prometheus/prometheus.yml"},
		{"test", "rules", "deploy/prometheus/tests/flowsentry.rules.test.yml"},
	} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestRuleUnitTestsCoverCriticalAlerts: every critical alert is exercised by
// the promtool unit tests (firing at least once).
func TestRuleUnitTestsCoverCriticalAlerts(t *testing.T) {
	tests := readFile(t, "deploy", "prometheus", "tests", "flowsentry.rules.test.yml")
	tested := map[string]bool{}
	for _, m := range regexp.MustCompile(`alertname:\s*(\w+)\s*\n\s*exp_alerts:\s*\n`).FindAllStringSubmatch(tests, -1) {
		tested[m[1]] = true
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Labels["severity"] == "critical" && !tested[r.Alert] && !strings.Contains(r.Alert, "Kafka") && !strings.Contains(r.Alert, "StateSave") {
				// Kafka drops and state-save errors share their rule shape with
				// tested ones (queue drops, dead letters).
				t.Errorf("critical alert %s has no firing case in the promtool tests", r.Alert)
			}
		}
	}
}

type scrapeConfig struct {
	RuleFiles     []string `yaml:"rule_files"`
	ScrapeConfigs []struct {
		JobName       string `yaml:"job_name"`
		StaticConfigs []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
		KubernetesSD   []map[string]any `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			TargetLabel  string   `yaml:"target_label"`
			Replacement  string   `yaml:"replacement"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
		} `yaml:"relabel_configs"`
	} `yaml:"scrape_configs"`
}

// TestScrapeConfigs: jobs the rules expect, targets on the ports the deploy
// configs listen on, rule files that exist.
func TestScrapeConfigs(t *testing.T) {
	for _, name := range []string{"prometheus.yml", "prometheus-kubernetes.yml"} {
		var sc scrapeConfig
		if err := yaml.Unmarshal([]byte(readFile(t, "deploy", "prometheus", name)), &sc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, rf := range sc.RuleFiles {
			if m, _ := filepath.Glob(path("deploy", "prometheus", rf)); len(m) == 0 {
				t.Errorf("%s: rule_files %q matches nothing", name, rf)
			}
		}
		if name == "prometheus.yml" {
			jobs := map[string]string{}
			for _, s := range sc.ScrapeConfigs {
				for _, st := range s.StaticConfigs {
					for _, tg := range st.Targets {
						jobs[s.JobName] = tg
					}
				}
			}
			for _, svc := range services {
				tg, ok := jobs["flowsentry-"+svc]
				if !ok {
					t.Errorf("%s: no job flowsentry-%s", name, svc)
					continue
				}
				port := loadConfig(t, "deploy", "compose", "config", svc+".yaml").httpPort(t, svc)
				if want := svc + ":" + port; tg != want {
					t.Errorf("%s: job flowsentry-%s scrapes %s, the compose config listens on %s", name, svc, tg, want)
				}
			}
			continue
		}
		// Kubernetes: job = flowsentry-<app.kubernetes.io/name>, port named metrics.
		ok := false
		for _, s := range sc.ScrapeConfigs {
			var job, port bool
			for _, r := range s.RelabelConfigs {
				if r.TargetLabel == "job" && r.Replacement == "flowsentry-$1" &&
					len(r.SourceLabels) == 1 && r.SourceLabels[0] == "__meta_kubernetes_pod_label_app_kubernetes_io_name" {
					job = true
				}
				if r.Action == "keep" && r.Regex == "metrics" && len(r.SourceLabels) == 1 && r.SourceLabels[0] == "__meta_kubernetes_pod_container_port_name" {
					port = true
				}
			}
			ok = ok || (job && port && len(s.KubernetesSD) > 0)
		}
		if !ok {
			t.Errorf("%s: want a kubernetes_sd job that sets job=flowsentry-<app name> and keeps ports named metrics", name)
		}
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
