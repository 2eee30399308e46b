package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExampleIsValid(t *testing.T) {
	c, err := Load("../alerter.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Receivers) != 4 || c.Route.Receiver != "noc-slack" || len(c.InhibitRules) != 2 || c.Incidents.ResolveAfter.Minutes() != 15 {
		t.Fatalf("example not loaded as written: %+v", c)
	}
}

func TestErrorsNameKeys(t *testing.T) {
	cases := []struct {
		yaml string
		want []string
	}{
		{"unknown_key: 1\n", []string{"unknown_key"}},
		{`
log_level: loud
consumer: {group_id: ""}
state: {path: ""}
api: {tokens_env: ""}
route: {receiver: nobody, routes: [{matchers: ["colour=red"]}]}
receivers:
  - name: a
    slack: {}
  - name: a
    webhook: {url: "ftp://x", secret: {env: S}}
  - name: c
    customer: {webhook: true}
inhibit_rules: [{source_matchers: ["class=scan"], target_matchers: ["x=y"]}]
silences: [{matchers: ["customer=a"], comment: "x"}]
`, []string{"log_level", "consumer.group_id", "state.path", "api: set tokens_file", `route.receiver: no receiver named "nobody"`,
			"route.routes[0].matchers[0]", "receivers[0].slack.webhook_url", "receivers[1].name: duplicate",
			"receivers[1].webhook.url", "receivers[2].customer: needs inventory.path", "inhibit_rules[0].target_matchers[0]",
			"silences[0].starts_at/ends_at", "silences[0].created_by"}},
	}
	for _, tc := range cases {
		p := filepath.Join(t.TempDir(), "a.yaml")
		_ = os.WriteFile(p, []byte(tc.yaml), 0o600)
		_, err := Load(p)
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("want %q in %v", w, err)
			}
		}
	}
}

func TestConsoleSection(t *testing.T) {
	base := "receivers: [{name: s, slack: {webhook_url: {env: S}}}]\nroute: {receiver: s}\n"
	cases := []struct {
		name, yaml string
		want       []string // substrings of the error; none: valid
	}{
		{"defaults", "", nil},
		{"disabled ignores its keys", "console: {enabled: false, band_spreads: -1}\n", nil},
		{"bad values", "console: {band_spreads: 0, query_timeout: 0s, talkers_max_window: -1s, clickhouse: {addr: [nohost], username: ''}}\n",
			[]string{"console.band_spreads", "console.query_timeout", "console.talkers_max_window", "console.clickhouse.addr[0]",
				"console.clickhouse.username"}},
		{"unknown key", "console: {colour: red}\n", []string{"colour"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "a.yaml")
			_ = os.WriteFile(p, []byte(base+tc.yaml), 0o600)
			_, err := Load(p)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("want %q in %v", w, err)
				}
			}
		})
	}
	c, err := Load("../alerter.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !c.Console.Enabled || c.Console.ClickHouse.Username != "flowsentry_analyst" ||
		c.Console.ClickHouse.Password.Env != "FLOWSENTRY_CH_ANALYST_PASSWORD" || c.Console.BandSpreads != 3 {
		t.Fatalf("example console section: %+v", c.Console)
	}
}
