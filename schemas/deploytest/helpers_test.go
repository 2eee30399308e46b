package deploytest

import (
	"reflect"
	"testing"
)

func TestMetricNames(t *testing.T) {
	for _, tc := range []struct {
		expr string
		want []string
	}{
		{`up{job=~"flowsentry-.*"} == 0`, []string{"up"}},
		{`sum by (job, instance, listener) (rate(collector_socket_drops_total[5m])) > 0`, []string{"collector_socket_drops_total"}},
		{`sum(rate(a_total{reason="queue",x='}'}[$__rate_interval])) / on(instance) group_left(job) b`, []string{"a_total", "b"}},
		{`(time() - max by (partition) (detector_watermark_seconds > 0)) > 300`, []string{"detector_watermark_seconds"}},
		{`histogram_quantile(0.99, sum by (le) (rate(x_seconds_bucket[5m]))) > 1e-3`, []string{"x_seconds_bucket"}},
		{`absent(up{job="a"}) or absent(up{job="b"})`, []string{"up"}},
		{`sum(x) without (instance) unless y offset 1h`, []string{"x", "y"}},
		{`increase(z_total[15m:1m]) > 0x10`, []string{"z_total"}},
	} {
		got, err := MetricNames(tc.expr)
		if err != nil {
			t.Fatalf("%q: %v", tc.expr, err)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("MetricNames(%q) = %v, want %v", tc.expr, got, tc.want)
		}
	}
	for _, bad := range []string{`rate(x[5m)`, `x{a="b"`, `x{a="b}`, `x}`} {
		if _, err := MetricNames(bad); err == nil {
			t.Errorf("MetricNames(%q): no error", bad)
		}
	}
}

func TestCatalogueFromSource(t *testing.T) {
	c := catalogue(t)
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"collector_socket_drops_total", true},          // Name only
		{"flowsentry_sink_consumer_lag", true},          // Namespace + Subsystem + Name from consts
		{"flowsentry_sink_insert_seconds_bucket", true}, // histogram series
		{"flowsentry_alerter_queue_depth", true},        // prometheus.NewDesc
		{"detector_flows_folded_total", true},
		{"process_resident_memory_bytes", true}, // telemetry registers the process collector
		{"go_goroutines", true},
		{"collector_socket_drops", false},
		{"flowsentry_sink_rows_total_bucket", false}, // a counter has no buckets
		{"kafka_consumergroup_lag", false},           // not ours
	} {
		if got := c.Has(tc.name); got != tc.want {
			t.Errorf("Has(%q) = %v, want %v", tc.name, got, tc.want)
		}
	}
	if len(c.Names) < 60 {
		t.Errorf("only %d metric series found in the source: the scanner misses declarations", len(c.Names))
	}
}

func TestSlugAndAnchors(t *testing.T) {
	md := "# Operations\n\n## Scaling out\n### FlowsentryServiceDown\ntext # not a heading\n## Backups (ClickHouse, Kafka)\n"
	a := Anchors(md)
	for _, want := range []string{"operations", "scaling-out", "flowsentryservicedown", "backups-clickhouse-kafka"} {
		if !a[want] {
			t.Errorf("anchor %q missing from %v", want, a)
		}
	}
	if a["not-a-heading"] || len(a) != 4 {
		t.Errorf("anchors %v", a)
	}
}

func TestParseUnit(t *testing.T) {
	u, err := ParseUnit("# c\n[Service]\nExecStart=/bin/a \\\n  -x\nSystemCallFilter=@system-service\nSystemCallFilter=~@privileged\n[Install]\nWantedBy=multi-user.target\n")
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Get("Service", "ExecStart"); got != "/bin/a    -x" {
		t.Errorf("ExecStart %q", got)
	}
	if got := u["Service"]["SystemCallFilter"]; len(got) != 2 {
		t.Errorf("repeated key: %v", got)
	}
	for _, bad := range []string{"ExecStart=/bin/a\n", "[Service\nA=b\n", "[Service]\nno equals\n"} {
		if _, err := ParseUnit(bad); err == nil {
			t.Errorf("ParseUnit(%q): no error", bad)
		}
	}
}
