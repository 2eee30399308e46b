// Package quality holds the detection-quality harness (see README.md,
// Detection quality): packages flows, export, static, score, suite,
// inproc, pipeline and the command in cmd/quality. This file checks its
// scenario files.
package quality

import (
	"path/filepath"
	"testing"

	"github.com/packetworks/flowsentry/benchmarks/quality/suite"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
)

// TestScenarioFiles loads every scenario file, checks that each has ground
// truth and that the pipeline set merges (disjoint subnets) and covers
// every class the detector knows plus benign events.
func TestScenarioFiles(t *testing.T) {
	pipe, err := suite.Files("scenarios")
	if err != nil {
		t.Fatal(err)
	}
	benign, err := suite.Files("scenarios/inproc")
	if err != nil {
		t.Fatal(err)
	}
	if len(pipe) < 20 {
		t.Errorf("%d pipeline scenarios, want at least 20", len(pipe))
	}
	kinds := map[string]int{}
	for _, f := range append(pipe, benign...) {
		sc, err := scenario.Load(f)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		labels := sc.Labels(suite.DefaultLive)
		if len(labels) == 0 {
			t.Errorf("%s: no ground truth (no attack or benign event)", filepath.Base(f))
		}
		for _, l := range labels {
			kinds[l.Kind]++
			if l.Subnet == "" || !l.End.After(l.Start) {
				t.Errorf("%s: label %+v", filepath.Base(f), l)
			}
		}
	}
	for _, k := range scenario.Kinds {
		if kinds[k] == 0 {
			t.Errorf("no scenario has a %s", k)
		}
	}
	s, err := suite.Load(pipe, suite.DefaultLive)
	if err != nil {
		t.Fatalf("the pipeline scenarios do not merge: %v", err)
	}
	if _, err := suite.Load(benign, suite.DefaultLive); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d pipeline scenarios, %d events, %s of event time", len(s.Scenarios), func() int {
		n := 0
		for _, v := range kinds {
			n += v
		}
		return n
	}(), s.End.Sub(s.Start))
}

// TestSoakFiles: the long benign soak (run by hand, README) is benign only
// and long enough to say something per 1,000 subnet-days.
func TestSoakFiles(t *testing.T) {
	files, err := suite.Files("scenarios/soak")
	if err != nil || len(files) == 0 {
		t.Fatalf("soak files: %v (%d)", err, len(files))
	}
	for _, f := range files {
		sc, err := scenario.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(sc.Labels(suite.DefaultLive)); n != 0 {
			t.Errorf("%s: %d labels; a soak is benign only (every incident is a false one)", filepath.Base(f), n)
		}
		subnets := 0
		for _, c := range sc.Customers {
			subnets += len(c.Subnets)
		}
		if days := float64(subnets) * sc.Tail.Hours() / 24; days < 1000 {
			t.Errorf("%s: %.0f subnet-days, want at least 1,000", filepath.Base(f), days)
		}
	}
}
