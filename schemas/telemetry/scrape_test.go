package telemetry

import (
	"strings"
	"testing"
)

func TestParseAndSum(t *testing.T) {
	page := `# HELP x_total Something.
# TYPE x_total counter
x_total{exporter="127.0.0.1",reason="short"} 3
x_total{exporter="127.0.0.1",reason="version"} 4
x_total{exporter="127.0.0.2",reason="short"} 0
x_total{exporter="a,b",reason="we\"ird"} 1
y 2.5e+06
`
	m, err := ParseText(strings.NewReader(page))
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		labels []string
		want   float64
	}{
		{nil, 8},
		{[]string{`reason="short"`}, 3},
		{[]string{`exporter="127.0.0.1"`}, 7},
		{[]string{`exporter="127.0.0.1"`, `reason="version"`}, 4},
		{[]string{`exporter="a,b"`}, 1},
		{[]string{`reason="nothing"`}, 0},
	}
	for _, c := range cases {
		if got := m.Sum("x_total", c.labels...); got != c.want {
			t.Errorf("Sum(x_total, %v) = %v, want %v", c.labels, got, c.want)
		}
	}
	if got := m.Sum("y"); got != 2.5e6 {
		t.Errorf("y = %v", got)
	}
	if got := m.Sum("x"); got != 0 {
		t.Errorf("x (a prefix of x_total) = %v, want 0", got)
	}
	r := m.Labels("x_total", "reason")
	if len(r) != 3 || r["short"] != 3 || r["version"] != 4 || r[`we\"ird`] != 1 {
		t.Errorf("Labels(reason) = %v", r)
	}
	if _, err := ParseText(strings.NewReader("x_total{a=\"b\"} notanumber\n")); err == nil {
		t.Error("a bad value parsed")
	}
}
