package classify

import (
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// gre is a window of GRE traffic (no specific class applies: volumetric)
// whose pps and bps are `ratio` times the expected values with the given
// score.
func gre(start int64, pps, ratio, score float64) (window.Features, [window.NumMetrics]baseline.Expectation) {
	a := window.NewAgg(10)
	a.Reset(start)
	a.Fold(&pb.Flow{Proto: 47, Packets: uint64(pps * 10), Bytes: uint64(pps * 10 * 1000),
		SrcAddr: []byte{192, 0, 2, 1}, DstAddr: []byte{203, 0, 113, 5}}, 0)
	f := window.Compute(a, start, 10)
	var exp [window.NumMetrics]baseline.Expectation
	for m := range exp {
		exp[m] = baseline.Expectation{Expected: f.Values[m] / ratio, Score: score}
	}
	return f, exp
}

func input(f *window.Features, exp *[window.NumMetrics]baseline.Expectation, customer string) *Input {
	return &Input{Subnet: "203.0.113.0/24", Customer: customer, Direction: pb.Direction_DIRECTION_INBOUND,
		F: f, Exp: exp, Warm: true}
}

// steps feeds windows with the given scores (final evaluations) and
// returns the event kinds per window.
func steps(c *Classifier, customer string, scores ...float64) []string {
	var tr Tracker
	var out []string
	for i, s := range scores {
		ratio := 1.0
		if s > 0 {
			ratio = 10
		}
		f, exp := gre(int64(i)*10e9, 100000, ratio, s)
		k := ""
		for _, ev := range c.Step(&tr, input(&f, &exp, customer), true, "t") {
			k += ev.Kind.String()
		}
		out = append(out, k)
	}
	return out
}

func TestHysteresis(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Default.StartWindows, cfg.Default.EndWindows, cfg.UpdateEveryWindows = 2, 3, 100
	cfg.Customers = map[string]map[string]Thresholds{"calm": {Volumetric: {Start: 20}}}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name     string
		customer string
		scores   []float64
		want     []string
	}{
		{"one window above is not enough", "", []float64{9, 0, 9, 0}, []string{"", "", "", ""}},
		{"two above start; three below end", "", []float64{9, 9, 3, 0, 0, 0, 0},
			[]string{"", "START", "", "", "", "END", ""}},
		{"between end and start keeps it open", "", []float64{9, 9, 3, 3, 3, 3, 0, 0, 0},
			[]string{"", "START", "", "", "", "", "", "", "END"}},
		{"a window above resets the end count", "", []float64{9, 9, 0, 0, 9, 0, 0, 0},
			[]string{"", "START", "", "", "", "", "", "END"}},
		{"per-customer start threshold", "calm", []float64{9, 9, 9, 25, 25}, []string{"", "", "", "", "START"}},
	}
	for _, tc := range cases {
		got := steps(c, tc.customer, tc.scores...)
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%s: window events %q, want %q", tc.name, got, tc.want)
				break
			}
		}
	}
}

func TestFloorsCeilingsAndWarmup(t *testing.T) {
	c, _ := New(DefaultConfig())
	f, exp := gre(0, 100000, 10, 9)
	in := input(&f, &exp, "")
	if _, ok := c.Flood(in); !ok {
		t.Fatal("10x GRE flood not volumetric")
	}
	in.Floors = map[string]float64{"bps": 1e12, "pps": 1e9}
	if _, ok := c.Flood(in); ok {
		t.Fatal("flood below the customer's floors alerted")
	}
	in.Floors = nil
	in.Warm = false
	if _, ok := c.Flood(in); ok {
		t.Fatal("a cold baseline alerted")
	}
	in.Ceilings = map[string]float64{"pps": 50000}
	vd, ok := c.Flood(in)
	if !ok || !vd.Ceiling || c.severity(in, vd.Class, vd) != pb.Severity_SEVERITY_CRITICAL {
		t.Fatalf("ceiling: %+v %v", vd, ok)
	}
	// Below MinRatio x expected nothing fires, whatever the score.
	f2, exp2 := gre(0, 100000, 1.5, 50)
	if _, ok := c.Flood(input(&f2, &exp2, "")); ok {
		t.Fatal("1.5x alerted with min_ratio 2")
	}
	// Too small to matter: 10x of 50 pps.
	f3, exp3 := gre(0, 50, 10, 50)
	if _, ok := c.Flood(input(&f3, &exp3, "")); ok {
		t.Fatal("10x of 50 pps alerted")
	}
}

// The provisional evaluation opens an anomaly once; the final evaluation
// of the same window does not open it again.
func TestProvisionalStartNotRepeated(t *testing.T) {
	c, _ := New(DefaultConfig())
	var tr Tracker
	f, exp := gre(0, 100000, 10, 9)
	evs := c.Step(&tr, input(&f, &exp, ""), false, "t")
	if len(evs) != 1 || evs[0].Kind != pb.AnomalyEvent_START || evs[0].Class != Volumetric {
		t.Fatalf("provisional: %v", evs)
	}
	if evs := c.Step(&tr, input(&f, &exp, ""), true, "t"); len(evs) != 0 {
		t.Fatalf("final after provisional START: %v", evs)
	}
	if a := tr.Fam[FamilyFlood].Active; a == nil || a.Windows != 1 || a.TotalPackets == 0 {
		t.Fatalf("anomaly after final: %+v", a)
	}
}

func TestAnomalyIDStable(t *testing.T) {
	a := AnomalyID("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND, SynFlood, 10)
	if a != AnomalyID("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND, SynFlood, 10) || len(a) != 16 {
		t.Fatal("id not stable")
	}
	for _, b := range []string{
		AnomalyID("203.0.113.0/24", pb.Direction_DIRECTION_OUTBOUND, SynFlood, 10),
		AnomalyID("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND, UDPFlood, 10),
		AnomalyID("203.0.113.0/24", pb.Direction_DIRECTION_INBOUND, SynFlood, 20),
	} {
		if a == b {
			t.Fatal("distinct anomalies share an id")
		}
	}
}
