package baseline

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/window"
	"gonum.org/v1/gonum/stat"
)

func model(t *testing.T) *Model {
	m, err := NewModel(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func vals(x float64) *window.Values {
	var v window.Values
	for i := range v {
		v[i] = x
	}
	return &v
}

// After warm-up on noisy data the expectation is near the median and the
// spread near the noise's robust spread (gonum's median/MAD as reference).
func TestLearnsLevelAndSpread(t *testing.T) {
	m := model(t)
	var s State
	rng := rand.New(rand.NewPCG(1, 2))
	var logs []float64
	for i := 0; i < 2000; i++ {
		x := 1000 * math.Exp2(0.2*rng.NormFloat64())
		logs = append(logs, math.Log2(1+x))
		m.Learn(&s, 3, vals(x))
	}
	e := m.Score(&s, 3, vals(1000))
	if e[window.Pps].Expected < 900 || e[window.Pps].Expected > 1100 {
		t.Fatalf("expected %.1f, want about 1000", e[window.Pps].Expected)
	}
	med := stat.Quantile(0.5, stat.Empirical, sorted(logs), nil)
	var dev []float64
	for _, l := range logs {
		dev = append(dev, math.Abs(l-med))
	}
	mad := 1.4826 * stat.Quantile(0.5, stat.Empirical, sorted(dev), nil)
	spread := float64(s.Global[window.Pps].Spread)
	if spread < 0.7*mad || spread > 1.3*mad {
		t.Fatalf("spread %.3f, scaled MAD %.3f", spread, mad)
	}
	// 10x is far out; 1.2x is not.
	if sc := m.Score(&s, 3, vals(10000))[window.Pps].Score; sc < 10 {
		t.Errorf("10x scores %.1f", sc)
	}
	if sc := m.Score(&s, 3, vals(1200))[window.Pps].Score; sc > 2 {
		t.Errorf("1.2x scores %.1f", sc)
	}
}

// One huge window moves the level by a bounded amount (Huber clipping).
func TestSpikeHasBoundedInfluence(t *testing.T) {
	m := model(t)
	var s State
	for i := 0; i < 500; i++ {
		m.Learn(&s, 0, vals(1000*(1+0.05*float64(i%3-1))))
	}
	before := m.Score(&s, 0, vals(0))[window.Pps].Expected
	m.Learn(&s, 0, vals(1e9))
	after := m.Score(&s, 0, vals(0))[window.Pps].Expected
	if after > before*1.1 {
		t.Fatalf("one spike moved the level from %.0f to %.0f", before, after)
	}
}

func TestWarmup(t *testing.T) {
	cfg := DefaultConfig()
	cfg.WarmupWindows = 5
	m, _ := NewModel(cfg)
	var s State
	for i := 0; i < 5; i++ {
		if m.Warm(&s) {
			t.Fatalf("warm after %d windows", i)
		}
		m.Learn(&s, 0, vals(10))
	}
	if !m.Warm(&s) {
		t.Fatal("not warm after warmup_windows")
	}
}

func TestSlots(t *testing.T) {
	m := model(t)
	for _, tc := range []struct {
		t    string
		slot int
	}{
		{"2024-06-10T00:30:00Z", 0},  // Monday
		{"2024-06-10T23:59:59Z", 23}, // Monday
		{"2024-06-15T09:00:00Z", 33}, // Saturday
		{"2024-06-16T23:00:00Z", 47}, // Sunday
	} {
		ts, _ := time.Parse(time.RFC3339, tc.t)
		if got := m.Slot(ts.UnixNano()); got != tc.slot {
			t.Errorf("%s: slot %d, want %d", tc.t, got, tc.slot)
		}
	}
}

func TestEncodeRoundTripAndSize(t *testing.T) {
	m := model(t)
	var s State
	for i := 0; i < 100; i++ {
		m.Learn(&s, i%48, vals(float64(i)))
	}
	b, _ := s.MarshalBinary()
	var got State
	if err := got.UnmarshalBinary(b); err != nil || got != s {
		t.Fatalf("round trip: %v", err)
	}
	if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("short state accepted")
	}
	b[0] = 99
	if err := got.UnmarshalBinary(b); err == nil {
		t.Fatal("wrong version accepted")
	}
}

func sorted(x []float64) []float64 {
	y := slices.Clone(x)
	slices.Sort(y)
	return y
}
