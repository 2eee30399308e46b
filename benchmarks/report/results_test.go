package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden/*")

// testdata/run-full holds the logs of a real QUICK=1 run on the shared
// 2-core box (detector-fold re-run with -count 3, sink.txt two real
// single-benchmark lines); testdata/run-broken is hand-made: a failed
// benchmark, a step killed at its time limit, a malformed result line and
// no sink step.

func TestBuildGolden(t *testing.T) {
	res, err := Build("testdata/run-full", false)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res, map[string]string{"collector": "collector.png"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "testdata/golden/latest.json", append(got, '\n'))
	golden(t, "testdata/golden/report.md", md.Bytes())
}

func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./report -update once and review the file)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from this output; review with go test ./report -update && git diff", path)
	}
}

// TestJSONShape checks latest.json as a consumer reads it: the keys the
// spec names on every figure, the machine description, and the figures'
// values and verdicts.
func TestJSONShape(t *testing.T) {
	res, err := Build("testdata/run-full", true)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(res)
	var doc struct {
		Quick     bool             `json:"quick"`
		QuickNote string           `json:"quick_note"`
		Machine   map[string]any   `json:"machine"`
		Figures   []map[string]any `json:"figures"`
		Steps     []map[string]any `json:"steps"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	if !doc.Quick || doc.QuickNote != "quick, not for comparison" {
		t.Fatalf("quick %v %q", doc.Quick, doc.QuickNote)
	}
	for _, k := range []string{"cpu_model", "cores", "memory_bytes", "go_version", "kernel", "os", "date", "load_average_start", "load_average_end"} {
		if _, ok := doc.Machine[k]; !ok {
			t.Errorf("machine has no %q", k)
		}
	}
	if end := doc.Machine["load_average_end"].([]any); end[0].(float64) != 3.65 {
		t.Errorf("load_average_end %v, want loadavg.end's 3.65", end)
	}
	if len(doc.Steps) != 7 {
		t.Errorf("%d steps, want 7", len(doc.Steps))
	}
	byID := map[string]map[string]any{}
	for _, f := range doc.Figures {
		for _, k := range []string{"id", "name", "value", "unit", "target", "met", "status", "quick", "command"} {
			if _, ok := f[k]; !ok {
				t.Errorf("figure %v has no %q", f["id"], k)
			}
		}
		if f["quick"] != true {
			t.Errorf("figure %v not flagged quick", f["id"])
		}
		byID[f["id"].(string)] = f
	}
	want := []struct {
		id                 string
		value, peer, ratio float64 // 0: absent
		met                any     // nil: no target
		status             string
	}{
		{"collector.vs_goflow2.v9", 748178.4, 78303.0, 9.55, true, StatusMeasured},
		{"collector.vs_goflow2.sflow", 306075.0, 71228.9, 4.30, false, StatusMeasured},
		{"detector.fold", 2011101, 0, 0, true, StatusMeasured}, // median of three runs
		{"detector.bytes_per_subnet", 1830, 0, 0, true, StatusMeasured},
		{"detector.time_to_start", 10.03, 0, 0, true, StatusMeasured},
		{"sink.e2e.batch=100000", 97370, 0, 0, false, StatusMeasured},
		{"sink.insert.rollups=false/batch=20000", 90291, 0, 0, nil, StatusMeasured},
		{"e2e.latency", 4.7636, 0, 0, nil, StatusMeasured},
		{"e2e.latency.datagram_to_start", 9.6099, 0, 0, true, StatusMeasured},
		{"collector.go.produce.AppendFlow", 259.6, 1432, 5.52, nil, StatusMeasured},
		{"collector.go.decode.Decode/sflow", 1756, 0, 0, nil, StatusMeasured},
	}
	for _, w := range want {
		f, ok := byID[w.id]
		if !ok {
			t.Errorf("no figure %s", w.id)
			continue
		}
		near := func(key string, v float64) {
			got, _ := f[key].(float64)
			if v == 0 {
				if f[key] != nil {
					t.Errorf("%s: %s = %v, want absent", w.id, key, f[key])
				}
				return
			}
			if got < v*0.999 || got > v*1.001 {
				t.Errorf("%s: %s = %v, want %v", w.id, key, got, v)
			}
		}
		near("value", w.value)
		near("peer_value", w.peer)
		if w.ratio != 0 {
			if r, _ := f["ratio"].(float64); r < w.ratio-0.01 || r > w.ratio+0.01 {
				t.Errorf("%s: ratio %v, want %v", w.id, r, w.ratio)
			}
		}
		if f["met"] != w.met {
			t.Errorf("%s: met %v, want %v", w.id, f["met"], w.met)
		}
		if f["status"] != w.status {
			t.Errorf("%s: status %v, want %v", w.id, f["status"], w.status)
		}
	}
	if a := byID["collector.go.decode.Decode/sflow"]["extra"].(map[string]any); a["allocs/flow"] != 8.0 || a["B/flow"] != 389.0 {
		t.Errorf("Decode/sflow extra %v", a)
	}
}

func TestBuildBrokenRun(t *testing.T) {
	res, err := Build("testdata/run-broken", false)
	if err != nil {
		t.Fatal(err)
	}
	get := func(id string) Figure {
		f, ok := figure(res, id)
		if !ok {
			t.Fatalf("no figure %s", id)
		}
		return f
	}
	cases := []struct {
		id, status, note string
		met              bool
	}{
		{"collector.vs_goflow2.v9", StatusFailed, "hit run.sh's time limit", false},
		{"detector.fold", StatusFailed, "BenchmarkFold failed: bench_test.go:40: boom; step detector-fold exited 1", false},
		{"detector.bytes_per_subnet", StatusFailed, "BenchmarkTargetMemory not in the output", false},
		{"detector.time_to_start", StatusMeasured, "", false}, // 12 s > 11 s
		{"sink.e2e.batch=100000", StatusMissing, "benchmarks/sink/run.sh was not present", false},
		{"e2e.latency", StatusMissing, "benchmarks/latency did not run", false},
		{"collector.go", StatusFailed, `line 2: BenchmarkDecode/netflow9: value "abc" is not a number`, false},
	}
	for _, c := range cases {
		f := get(c.id)
		if f.Status != c.status || !strings.Contains(f.Note, c.note) {
			t.Errorf("%s: status %q note %q, want %q and a note containing %q", c.id, f.Status, f.Note, c.status, c.note)
		}
		if f.Check != nil && (f.Met == nil || *f.Met != c.met) {
			t.Errorf("%s: met %v, want %v", c.id, f.Met, c.met)
		}
	}
	var md bytes.Buffer
	if err := WriteMarkdown(&md, res, nil); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"**no** (failed)", "**no** (missing)", "Not measured in this run (failed: BenchmarkFold failed: bench_test.go:40: boom"} {
		if !strings.Contains(md.String(), want) {
			t.Errorf("report.md lacks %q", want)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Build(dir, false); err == nil || !strings.Contains(err.Error(), "machine.json") {
		t.Fatalf("no machine.json: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "machine.json"), []byte(`{"cores":2}`), 0o644)
	os.WriteFile(filepath.Join(dir, "steps.tsv"), []byte("sink\tzero\t1\t1\tcmd\n"), 0o644)
	if _, err := Build(dir, false); err == nil || !strings.Contains(err.Error(), "steps.tsv:1") {
		t.Fatalf("bad exit code: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "steps.tsv"), []byte("sink\t0\t1\n"), 0o644)
	if _, err := Build(dir, false); err == nil || !strings.Contains(err.Error(), "want 5 tab-separated fields") {
		t.Fatalf("short line: %v", err)
	}
}

func TestMet(t *testing.T) {
	ge := &TargetCheck{On: "value", Op: ">=", Bound: 10}
	le := &TargetCheck{On: "value", Op: "<=", Bound: 10}
	ratio := &TargetCheck{On: "ratio", Op: ">=", Bound: 6}
	cases := []struct {
		name string
		f    Figure
		want any // nil, true, false
	}{
		{"no target", Figure{Value: ptr(1), Status: StatusMeasured}, nil},
		{"at the bound", Figure{Value: ptr(10), Check: ge, Status: StatusMeasured}, true},
		{"below", Figure{Value: ptr(9.9), Check: ge, Status: StatusMeasured}, false},
		{"cost under the bound", Figure{Value: ptr(9), Check: le, Status: StatusMeasured}, true},
		{"cost over the bound", Figure{Value: ptr(11), Check: le, Status: StatusMeasured}, false},
		{"ratio read, not value", Figure{Value: ptr(1e6), Ratio: ptr(5.9), Check: ratio, Status: StatusMeasured}, false},
		{"ratio met", Figure{Value: ptr(1), Ratio: ptr(6.1), Check: ratio, Status: StatusMeasured}, true},
		{"not measured", Figure{Check: ge, Status: StatusNotMeasured}, false},
		{"failed with a stale value", Figure{Value: ptr(20), Check: ge, Status: StatusFailed}, false},
	}
	for _, c := range cases {
		got := c.f.met()
		switch {
		case c.want == nil && got != nil, c.want != nil && (got == nil || *got != c.want.(bool)):
			t.Errorf("%s: met %v, want %v", c.name, got, c.want)
		}
	}
}

func TestWritePlots(t *testing.T) {
	res, err := Build("testdata/run-full", false)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	plots, err := WritePlots(dir, res)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"collector", "detector", "sink", "collector-go"} {
		file, ok := plots[name]
		if !ok {
			t.Errorf("no %s plot", name)
			continue
		}
		fh, err := os.Open(filepath.Join(dir, file))
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if b := img.Bounds(); b.Dx() < 400 || b.Dy() < 150 {
			t.Errorf("%s is %v", file, b)
		}
	}
	// Nothing measured: no plot at all rather than an empty one.
	broken, _ := Build("testdata/run-broken", false)
	plots, err = WritePlots(t.TempDir(), broken)
	if err != nil || len(plots) != 0 {
		t.Fatalf("plots of a run with nothing to plot: %v %v", plots, err)
	}
}

func TestFailReason(t *testing.T) {
	dir := t.TempDir()
	log := "BenchmarkInsertFlows/batch=20000-2 \t 3\t 1 rows/s\n" +
		"BenchmarkSinkEndToEnd/batch=100000-2   \t--- FAIL: BenchmarkSinkEndToEnd/batch=100000-2\n" +
		"    bench_integration_test.go:260: flows holds 1000000 rows, want 2000000\n" +
		"BenchmarkSinkEndToEnd/batch=1000-2   \t--- FAIL: BenchmarkSinkEndToEnd/batch=1000-2\n" +
		"--- FAIL: BenchmarkSinkEndToEnd\nFAIL\n"
	os.WriteFile(filepath.Join(dir, "sink.txt"), []byte(log), 0o644)
	for _, c := range []struct{ bench, want string }{
		{"BenchmarkSinkEndToEnd/batch=100000", "bench_integration_test.go:260: flows holds 1000000 rows, want 2000000"},
		{"BenchmarkSinkEndToEnd/batch=1000", "failed"}, // no message under it
		{"BenchmarkSinkEndToEnd/batch=10", ""},         // a prefix of another name is not a match
		{"BenchmarkInsertFlows/batch=20000", ""},
	} {
		if got := failReason(dir, "sink", c.bench); got != c.want {
			t.Errorf("failReason(%s) = %q, want %q", c.bench, got, c.want)
		}
	}
	if got := failReason(dir, "absent", "BenchmarkX"); got != "" {
		t.Errorf("missing log: %q", got)
	}
}
