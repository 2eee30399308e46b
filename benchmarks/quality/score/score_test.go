package score

import (
	"math"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
)

var t0 = time.Date(2026, 1, 7, 14, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func label(name, class, subnet, dir string, from, to int, mag float64) scenario.Label {
	return scenario.Label{Name: name, Kind: class, Class: class, Subnet: subnet, Direction: dir, Start: at(from), End: at(to), Magnitude: mag}
}

func inc(id, class, subnet, dir string, start, opened, end int) Incident {
	in := Incident{ID: id, Class: class, Subnet: subnet, Direction: dir, Start: at(start), Opened: at(opened)}
	if end >= 0 {
		in.End = at(end)
	}
	return in
}

func TestMatch(t *testing.T) {
	const a, b = "198.18.0.0/24", "198.18.1.0/24"
	labels := []scenario.Label{
		label("syn", "syn_flood", a, "inbound", 63, 93, 5),        // detected, exact class, TTD 7
		label("udp", "udp_flood", b, "inbound", 60, 90, 2),        // detected with the wrong flood class
		label("scan", "scan", a, "outbound", 100, 220, 3),         // fragmented into two, plus a SYN flood duplicate
		label("missed", "icmp_flood", b, "inbound", 300, 330, 20), // nothing
		{Name: "crowd", Kind: "flash_crowd", Class: "none", Benign: true, Subnet: a, Direction: "inbound", Start: at(400), End: at(500)},
	}
	incs := []Incident{
		inc("1", "syn_flood", a, "inbound", 60, 70, 100),
		inc("2", "volumetric", b, "inbound", 60, 70, 95),
		inc("3", "scan", a, "outbound", 100, 120, 150),
		inc("4", "scan", a, "outbound", 170, 190, 230), // after 3 ended: a fragment
		inc("5", "syn_flood", a, "outbound", 100, 110, 200),
		inc("6", "volumetric", a, "inbound", 420, 430, 460), // on the flash crowd
		inc("7", "udp_flood", b, "outbound", 700, 710, -1),  // nothing explains it
		inc("8", "syn_flood", a, "inbound", 50, 60, -1),     // 13 s before the attack: outside the slack
	}
	lr, ir := Match("t", labels, incs, DefaultOptions())
	want := []struct {
		detected, correct bool
		ttd               float64
		dup, frag         int
	}{{true, true, 7, 0, 0}, {true, false, 10, 0, 0}, {true, true, 20, 1, 1}, {false, false, -1, 0, 0}, {false, false, -1, 0, 0}}
	for i, w := range want {
		l := lr[i]
		if l.Detected != w.detected || l.Correct != w.correct || l.TTD != w.ttd || l.Duplicates != w.dup || l.Fragments != w.frag {
			t.Errorf("%s: detected %v correct %v ttd %v dup %d frag %d, want %+v", l.Name, l.Detected, l.Correct, l.TTD, l.Duplicates, l.Fragments, w)
		}
	}
	wantInc := []struct {
		true_  bool
		reason string
	}{{true, ""}, {true, ""}, {true, ""}, {true, ""}, {true, ""}, {false, "benign flash_crowd crowd"}, {false, "background"}, {false, "background"}}
	for i, w := range wantInc {
		if ir[i].True != w.true_ || ir[i].Reason != w.reason {
			t.Errorf("incident %s: true %v reason %q, want %v %q", ir[i].ID, ir[i].True, ir[i].Reason, w.true_, w.reason)
		}
	}
	if !ir[4].OtherFamily || ir[4].Label != "scan" {
		t.Errorf("the outbound SYN flood during the scan: %+v, want a duplicate of the scan", ir[4])
	}

	s := Summarize(lr, ir)
	if s.Incidents != 8 || s.FalseIncidents != 3 || s.FalseOnBenign != 1 || s.Duplicates != 1 || s.Fragments != 1 || s.Fragmented != 1 {
		t.Errorf("summary %+v", s)
	}
	syn := s.Classes["syn_flood"] // 3 incidents: one right, one a scan's duplicate, one false
	if syn.Labels != 1 || syn.Correct != 1 || syn.Incidents != 3 || syn.TrueInc != 1 || math.Abs(float64(syn.Precision)-1.0/3) > 1e-9 ||
		math.Abs(float64(syn.F1)-0.5) > 1e-9 {
		t.Errorf("syn_flood stats %+v", *syn)
	}
	if u := s.Classes["udp_flood"]; u.Recall != 0 || u.Detected != 1 || u.Incidents != 1 || u.Precision != 0 {
		t.Errorf("udp_flood stats %+v", *u)
	}
	// >= 3x: syn (5x), scan (3x) and the missed icmp (20x): 2 of 3 right.
	if g := s.Ge3x; g.Labels != 3 || g.Correct != 2 || g.TrueInc != 4 || g.Incidents != 7 {
		t.Errorf("ge3x %+v", g)
	}
	if s.Bands["lt3x"].Labels != 1 || s.Bands["ge10x"].Labels != 1 || s.TTDp50 != 7 || s.TTDp95 != 20 {
		t.Errorf("bands %+v %+v, ttd %v %v", s.Bands["lt3x"], s.Bands["ge10x"], s.TTDp50, s.TTDp95)
	}
}

func TestUpperBound95(t *testing.T) {
	for _, tc := range []struct {
		k        int
		exposure float64
		want     float64
	}{{0, 1000, 3.0 / 1000}, {1, 1, 4.74}, {5, 1, 10.51}} {
		if got := UpperBound95(tc.k, tc.exposure); math.Abs(got-tc.want)/tc.want > 0.01 {
			t.Errorf("UpperBound95(%d, %g) = %g, want %g", tc.k, tc.exposure, got, tc.want)
		}
	}
}

func TestQuantileAndJSON(t *testing.T) {
	if q := Quantile([]float64{10, 1, 7, 3}, 0.5); q != 3 {
		t.Errorf("median %v", q)
	}
	if !math.IsNaN(Quantile(nil, 0.5)) {
		t.Error("quantile of nothing is a number")
	}
	b, err := F(math.NaN()).MarshalJSON()
	if err != nil || string(b) != "null" {
		t.Errorf("NaN marshals as %s, %v", b, err)
	}
}
