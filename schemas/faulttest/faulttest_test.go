package faulttest

import (
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
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
	m, err := Parse(strings.NewReader(page))
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
	if _, err := Parse(strings.NewReader("x_total{a=\"b\"} notanumber\n")); err == nil {
		t.Error("a bad value parsed")
	}
}

func TestRSSAndAlive(t *testing.T) {
	rss, err := RSS(os.Getpid())
	if err != nil || rss < 1<<20 || rss > 64<<30 {
		t.Fatalf("RSS of the test process: %d, %v", rss, err)
	}
	if !alive(os.Getpid()) {
		t.Error("the test process is not alive")
	}
	if _, err := RSS(1 << 30); err == nil {
		t.Error("RSS of a pid that cannot exist")
	}
}

func TestSecondsFromEnv(t *testing.T) {
	t.Setenv("FAULTTEST_X", "")
	if d, err := Seconds("FAULTTEST_X", 30); err != nil || d != 30*time.Second {
		t.Errorf("default: %v %v", d, err)
	}
	t.Setenv("FAULTTEST_X", "5")
	if d, err := Seconds("FAULTTEST_X", 30); err != nil || d != 5*time.Second {
		t.Errorf("5: %v %v", d, err)
	}
	for _, bad := range []string{"0", "-1", "5s", "x"} {
		t.Setenv("FAULTTEST_X", bad)
		if _, err := Seconds("FAULTTEST_X", 30); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestBrokerPIDRefusesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	pidFile := dir + "/kafka.pid"
	// Our own pid is alive but not a broker: it must never be signalled.
	if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := brokerPID(pidFile, dir+"/server.properties"); err == nil {
		t.Error("the test process was taken for the broker")
	}
	if _, err := brokerPID(dir+"/missing.pid", dir+"/server.properties"); err == nil {
		t.Error("a missing pid file gave a pid")
	}
}
