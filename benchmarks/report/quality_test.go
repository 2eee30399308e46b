package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runWithQuality is testdata/run-full plus a quality step whose
// quality.json is testdata/quality (a real run of two scenarios: ICMP and
// fragment floods, and one benign day in-process).
func runWithQuality(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files, _ := filepath.Glob("testdata/run-full/*")
	for _, f := range append(files, "testdata/quality/quality.json") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if filepath.Base(f) == "steps.tsv" {
			b = append(b, "quality\t0\t64.2\t1.10\tcd benchmarks && go run ./quality/cmd/quality -only icmp-flood-sweep,fragment-flood-sweep -benign-days 1\n"...)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestQualityFigures(t *testing.T) {
	res, err := Build(runWithQuality(t), false)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		value, peer float64
		met         bool
	}{
		// From testdata/quality/quality.json: 6 of 9 ICMP and fragment
		// floods >= 3x named right (the static detector: all 9).
		"quality.recall.ge3x":                {6.0 / 9, 1, false},
		"quality.recall.icmp_flood.ge3x":     {0.5, 1, false},
		"quality.f1.fragment_flood":          {12.0 / 13, 12.0 / 13, false},
		"quality.false_per_1000_subnet_days": {11 / 16.022222222222222 * 1000, -1, false},
	}
	for id, w := range want {
		f, ok := figure(res, id)
		if !ok {
			t.Errorf("no figure %s", id)
			continue
		}
		if f.Value == nil || abs(*f.Value-w.value) > 1e-6 || f.Met == nil || *f.Met != w.met {
			t.Errorf("%s: value %v met %v, want %v met %v (%s)", id, f.Value, f.Met, w.value, w.met, f.Note)
		}
		if w.peer >= 0 && (f.PeerValue == nil || abs(*f.PeerValue-w.peer) > 1e-6) {
			t.Errorf("%s: peer %v, want %v", id, f.PeerValue, w.peer)
		}
	}
	if f, _ := figure(res, "quality.recall.icmp_flood.ge3x"); !strings.Contains(f.Note, "volumetric at 10×") {
		t.Errorf("icmp_flood note %q does not say what the missed floods became", f.Note)
	}
	if f, _ := figure(res, "quality.false_per_1000_subnet_days"); !strings.Contains(f.Note, "icmp_flood on pps_icmp 200") {
		t.Errorf("benign note %q has no evidence", f.Note)
	}
	// The rate target is met only when its 95 % upper bound is within it:
	// zero incidents in a few subnet-days shows nothing.
	for _, c := range []struct {
		upper float64
		met   bool
	}{{46.8, false}, {0.9, true}} {
		f := Figure{Status: StatusMeasured, Value: ptr(0), Extra: map[string]float64{"upper95": c.upper},
			Check: &TargetCheck{On: "upper95", Op: "<=", Bound: 1}}
		if m := f.met(); m == nil || *m != c.met {
			t.Errorf("0 incidents, upper bound %g: met %v, want %v", c.upper, m, c.met)
		}
	}
	var md strings.Builder
	if err := WriteMarkdown(&md, res, map[string]string{"quality": "quality.png"}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## Detection quality", "| icmp_flood | 0.57 | 0.71 | 0.50 | 1.00 |", "| 10–50× |", "![recall by magnitude, ours vs static](quality.png)"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("report.md lacks %q", s)
		}
	}
	out := t.TempDir()
	plots, err := WritePlots(out, res)
	if err != nil || plots["quality"] != "quality.png" {
		t.Fatalf("plots %v, %v", plots, err)
	}
}

func TestQualityMissing(t *testing.T) {
	res, err := Build("testdata/run-full", false)
	if err != nil {
		t.Fatal(err)
	}
	f, ok := figure(res, "quality.recall.ge3x")
	if !ok || f.Status != StatusMissing || f.Met == nil || *f.Met {
		t.Fatalf("without the step: %+v", f)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
