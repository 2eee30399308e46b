package service

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The example file documents the defaults: loading it must give exactly
// the built-in defaults.
func TestExampleIsDefaults(t *testing.T) {
	c, err := Load("../detector.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := Default(); !reflect.DeepEqual(c, d) {
		t.Fatalf("example differs from defaults:\n%+v\n%+v", c, d)
	}
}

func TestValidationNamesTheKey(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"engine: {window_seconds: 0}", "engine.window_seconds"},
		{"engine: {lateness_seconds: 10}", "engine.lateness_seconds"},
		{"engine: {allowlist: [10.0.0.1/8]}", "engine.allowlist[0]"},
		{"engine: {partition_idle_seconds: 0}", "engine.partition_idle_seconds"},
		{"baseline: {alpha: 2}", "baseline.alpha"},
		{"baseline: {timezone: Mars/Base}", "baseline.timezone"},
		{"classify: {classes: {syn_floood: {start: 3}}}", "classify.classes.syn_floood"},
		{"classify: {floors: {bogus: 1}}", "classify.floors.bogus"},
		{"classify: {default: {start: 2, end: 3}}", "classify.default.end"},
		{"worker: {start_offset: middle}", "worker.start_offset"},
		{"kafka: {brokers: []}", "kafka.brokers"},
		{"log_level: loud", "log_level"},
		{"clickhouse: {addr: [localhost]}", "clickhouse.addr[0]"},
		{"engine: {windw_seconds: 5}", "windw_seconds"}, // unknown keys are errors
	}
	dir := t.TempDir()
	for i, tc := range cases {
		p := filepath.Join(dir, "c.yaml")
		if err := os.WriteFile(p, []byte(tc.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := Load(p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("case %d %q: error %v, want it to name %s", i, tc.yaml, err, tc.want)
		}
	}
}
