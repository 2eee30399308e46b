package main

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Bench is one result line of `go test -bench`: one run of one benchmark.
type Bench struct {
	Pkg     string   // from the "pkg:" line above it
	Name    string   // "BenchmarkDecode/netflow9", without the -GOMAXPROCS suffix
	Procs   int      // GOMAXPROCS suffix; 1 when absent
	N       int64    // iterations
	Metrics []Metric // in printed order: ns/op first, then custom and -benchmem units
}

// Metric is one "value unit" pair of a result line.
type Metric struct {
	Value float64
	Unit  string
}

// Get returns the metric with this unit.
func (b Bench) Get(unit string) (float64, bool) {
	for _, m := range b.Metrics {
		if m.Unit == unit {
			return m.Value, true
		}
	}
	return 0, false
}

// ParseGoBench reads `go test -bench` text output. Lines that are not
// results (goos:, PASS, ok, logs) are skipped. A benchmark whose name was
// printed before a log line and whose numbers follow on a later line (the
// testing package prints the name before running it) is joined up. A line
// that starts like a result but does not parse is an error naming the
// line: a silently dropped figure would make the report lie.
func ParseGoBench(r io.Reader) ([]Bench, error) {
	var (
		out     []Bench
		pkg     string
		pending string // a benchmark name still waiting for its numbers
		lineNo  int
	)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg, pending = strings.TrimSpace(p), ""
			continue
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		var b Bench
		switch {
		case strings.HasPrefix(f[0], "Benchmark") && len(f[0]) > len("Benchmark"):
			if len(f) == 1 || !isCount(f[1]) {
				pending = f[0] // numbers (if any) come on a later line
				continue
			}
			var err error
			if b, err = parseResult(f[0], f[1:]); err != nil {
				return out, fmt.Errorf("line %d: %w: %q", lineNo, err, line)
			}
		case pending != "" && isCount(f[0]):
			var err error
			if b, err = parseResult(pending, f); err != nil {
				continue // a log line that happens to start with a number
			}
		default:
			continue
		}
		pending = ""
		b.Pkg = pkg
		out = append(out, b)
	}
	return out, sc.Err()
}

func isCount(s string) bool {
	_, err := strconv.ParseInt(s, 10, 64)
	return err == nil
}

// parseResult parses "N v1 u1 v2 u2 ..." for the named benchmark.
func parseResult(name string, f []string) (Bench, error) {
	b := Bench{Name: name, Procs: 1}
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if p, err := strconv.Atoi(name[i+1:]); err == nil && p > 0 {
			b.Name, b.Procs = name[:i], p
		}
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || n < 0 {
		return b, fmt.Errorf("%s: iteration count %q", b.Name, f[0])
	}
	b.N = n
	rest := f[1:]
	if len(rest) == 0 || len(rest)%2 != 0 {
		return b, fmt.Errorf("%s: want value/unit pairs after the count", b.Name)
	}
	for i := 0; i < len(rest); i += 2 {
		v, err := strconv.ParseFloat(rest[i], 64)
		if err != nil {
			return b, fmt.Errorf("%s: value %q is not a number", b.Name, rest[i])
		}
		b.Metrics = append(b.Metrics, Metric{Value: v, Unit: rest[i+1]})
	}
	return b, nil
}

// Runs groups results by package and name, in order of first appearance
// (go test -count N prints N lines per benchmark).
type Runs struct {
	Pkg, Name string
	Lines     []Bench
}

func GroupRuns(bs []Bench) []Runs {
	var out []Runs
	idx := map[string]int{}
	for _, b := range bs {
		k := b.Pkg + " " + b.Name
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, Runs{Pkg: b.Pkg, Name: b.Name})
		}
		out[i].Lines = append(out[i].Lines, b)
	}
	return out
}

// Values returns the unit's value in each run that reported it.
func (r Runs) Values(unit string) []float64 {
	var vs []float64
	for _, b := range r.Lines {
		if v, ok := b.Get(unit); ok {
			vs = append(vs, v)
		}
	}
	return vs
}

// Median of the unit over the runs; false when no run reported it.
func (r Runs) Median(unit string) (float64, bool) {
	vs := r.Values(unit)
	if len(vs) == 0 {
		return 0, false
	}
	return median(vs), true
}

func median(vs []float64) float64 {
	s := append([]float64(nil), vs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
