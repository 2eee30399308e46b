package telemetry

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Metrics is one scrape of a /metrics page: sample -> value, where a
// sample is written as on the page, e.g. `x_total{reason="short"}`.
type Metrics map[string]float64

// ParseText reads the Prometheus text format (what client_golang writes:
// no timestamps).
func ParseText(r io.Reader) (Metrics, error) {
	m := Metrics{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			return nil, fmt.Errorf("metrics line %q: no value", line)
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			return nil, fmt.Errorf("metrics line %q: %w", line, err)
		}
		m[strings.TrimSpace(line[:i])] = v
	}
	return m, sc.Err()
}

// Sum adds every sample of metric name whose labels include all of
// labels, each written k="v" (e.g. `reason="short"`).
func (m Metrics) Sum(name string, labels ...string) float64 {
	var s float64
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		have := splitLabels(strings.TrimSuffix(rest, "}"))
		ok := true
		for _, l := range labels {
			ok = ok && slices.Contains(have, l)
		}
		if ok {
			s += v
		}
	}
	return s
}

// Labels returns the distinct values of label key among the samples of
// metric name whose value is above zero.
func (m Metrics) Labels(name, key string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		n, rest, _ := strings.Cut(k, "{")
		if n != name || v <= 0 {
			continue
		}
		for _, kv := range splitLabels(strings.TrimSuffix(rest, "}")) {
			if lk, lv, ok := strings.Cut(kv, "="); ok && lk == key {
				out[strings.Trim(lv, `"`)] += v
			}
		}
	}
	return out
}

// splitLabels splits k1="v1",k2="v2" at the commas outside quotes.
func splitLabels(s string) []string {
	var out []string
	inQ, esc, start := false, false, 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case esc:
			esc = false
		case c == '\\':
			esc = true
		case c == '"':
			inQ = !inQ
		case c == ',' && !inQ:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}

// Scrape reads base+"/metrics" (base like "http://127.0.0.1:9102"): tests,
// the demo and the benchmarks read the services as Prometheus would.
func Scrape(ctx context.Context, base string) (Metrics, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s/metrics: %s", base, resp.Status)
	}
	return ParseText(resp.Body)
}
