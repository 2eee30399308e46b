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
