package route

import (
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/config"
)

func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestMatcher(t *testing.T) {
	cases := []struct {
		m      string
		labels map[string]string
		want   bool
	}{
		{"class=syn_flood", labels("class", "syn_flood"), true},
		{"class=syn_flood", labels("class", "udp_flood"), false},
		{"class!=syn_flood", labels("class", "udp_flood"), true},
		{`class=~"syn_flood|udp_flood"`, labels("class", "udp_flood"), true},
		{`class=~"syn"`, labels("class", "syn_flood"), false}, // anchored
		{`customer!~"test-.*"`, labels("customer", "test-1"), false},
		{"severity>=warning", labels("severity", "critical"), true},
		{"severity>=warning", labels("severity", "info"), false},
		{"severity<=warning", labels("severity", "info"), true},
		{"severity<=warning", labels("severity", ""), false},
		{`subnet="203.0.113.0/24"`, labels("subnet", "203.0.113.0/24"), true},
	}
	for _, tc := range cases {
		m, err := ParseMatcher(tc.m)
		if err != nil {
			t.Fatalf("%s: %v", tc.m, err)
		}
		if got := m.Matches(tc.labels); got != tc.want {
			t.Errorf("%s on %v: got %v", tc.m, tc.labels, got)
		}
	}
	for _, bad := range []string{"nolabel", "colour=red", "class=~(", "class>=warning", "severity>=huge"} {
		if _, err := ParseMatcher(bad); err == nil {
			t.Errorf("%q: want error", bad)
		}
	}
}

const treeYAML = `
receiver: noc-slack
group_by: [customer]
group_wait: 10s
routes:
  - receiver: customers
    continue: true
  - matchers: ["severity=critical"]
    receiver: noc-pagerduty
    group_by: [customer, subnet]
    repeat_interval: 1h
    routes:
      - matchers: ['customer=~"lab-.*"']
        receiver: lab-webhook
  - matchers: ["class=scan"]
    receiver: soc-webhook
`

func TestTree(t *testing.T) {
	var c Config
	if err := config.Decode([]byte(treeYAML), &c); err != nil {
		t.Fatal(err)
	}
	root, err := Compile(c, []string{"noc-slack", "customers", "noc-pagerduty", "lab-webhook", "soc-webhook"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		labels map[string]string
		want   []string
	}{
		{labels("customer", "acme", "severity", "critical", "class", "syn_flood"), []string{"customers", "noc-pagerduty"}},
		{labels("customer", "lab-1", "severity", "critical"), []string{"customers", "lab-webhook"}},
		{labels("customer", "acme", "severity", "warning", "class", "scan"), []string{"customers", "soc-webhook"}},
		{labels("customer", "acme", "severity", "warning", "class", "udp_flood"), []string{"customers"}},
	}
	for _, tc := range cases {
		var got []string
		for _, r := range root.Match(tc.labels) {
			got = append(got, r.Receiver)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("%v: got %v want %v", tc.labels, got, tc.want)
		}
	}
	pd := root.Match(labels("customer", "acme", "severity", "critical", "subnet", "10.0.0.0/24"))[1]
	if pd.GroupWait != 10*time.Second || pd.RepeatInterval != time.Hour || pd.GroupInterval != DefaultGroupInterval {
		t.Fatalf("inheritance: %+v", pd)
	}
	if k := pd.GroupKey(labels("customer", "acme", "subnet", "10.0.0.0/24", "class", "x")); k != `0.1{customer="acme",subnet="10.0.0.0/24"}` {
		t.Fatalf("group key %s", k)
	}
}

func TestCompileErrorsNameKeys(t *testing.T) {
	var c Config
	_ = config.Decode([]byte(`
routes:
  - matchers: ["colour=red"]
    receiver: nobody
    group_by: [shoe]
    group_interval: 0s
`), &c)
	_, err := Compile(c, []string{"a"})
	for _, want := range []string{"route.receiver: required", "route.routes[0].matchers[0]: unknown label",
		`route.routes[0].receiver: no receiver named "nobody"`, "route.routes[0].group_by[0]", "route.routes[0].group_interval"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestInhibition(t *testing.T) {
	rules, err := CompileInhibitRules([]InhibitConfig{{
		SourceMatchers: []string{"class=traffic_drop", "scope=customer"},
		TargetMatchers: []string{"class=traffic_drop", "scope=subnet"},
		Equal:          []string{"customer"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	outage := labels("id", "o", "class", "traffic_drop", "scope", "customer", "customer", "acme")
	drop := labels("id", "d", "class", "traffic_drop", "scope", "subnet", "customer", "acme", "subnet", "10.0.0.0/24")
	other := labels("id", "x", "class", "traffic_drop", "scope", "subnet", "customer", "beta", "subnet", "10.1.0.0/24")
	flood := labels("id", "f", "class", "syn_flood", "scope", "subnet", "customer", "acme")
	firing := []map[string]string{outage, drop, other, flood}
	for _, tc := range []struct {
		target map[string]string
		want   bool
	}{{drop, true}, {other, false}, {flood, false}, {outage, false}} {
		_, src, got := Inhibited(rules, tc.target, firing)
		if got != tc.want || (got && src != "o") {
			t.Errorf("%s: got %v by %q", tc.target["id"], got, src)
		}
	}
	if _, err := CompileInhibitRules([]InhibitConfig{{SourceMatchers: []string{"a=b"}, Equal: []string{"zz"}}}); err == nil ||
		!strings.Contains(err.Error(), "inhibit_rules[0].equal[0]") || !strings.Contains(err.Error(), "target_matchers are required") {
		t.Fatalf("errors: %v", err)
	}
}

func TestSilence(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 10, 0, 0, 0, time.UTC)
	s := &Silence{ID: "s1", Matchers: []string{"customer=acme"}, StartsAt: t0, EndsAt: t0.Add(time.Hour),
		CreatedBy: "alice", Comment: "maintenance"}
	if err := s.Validate("silences[0]"); err != nil {
		t.Fatal(err)
	}
	l := labels("customer", "acme")
	for _, tc := range []struct {
		at   time.Time
		want bool
	}{{t0.Add(-time.Second), false}, {t0, true}, {t0.Add(59 * time.Minute), true}, {t0.Add(time.Hour), false}} {
		if got := Silenced([]*Silence{s}, l, tc.at) != nil; got != tc.want {
			t.Errorf("at %s: got %v", tc.at, got)
		}
	}
	if Silenced([]*Silence{s}, labels("customer", "beta"), t0) != nil {
		t.Error("silence matched another customer")
	}
	bad := &Silence{Matchers: nil, StartsAt: t0, EndsAt: t0}
	err := bad.Validate("silences[1]")
	for _, want := range []string{"silences[1].matchers", "silences[1].ends_at", "silences[1].created_by", "silences[1].comment"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
