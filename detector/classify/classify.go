package classify

import (
	"math"
	"slices"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Input is one target's closed (or provisionally closed) window.
type Input struct {
	Subnet    string
	Customer  string
	Direction pb.Direction
	F         *window.Features
	Exp       *[window.NumMetrics]baseline.Expectation
	Warm      bool
	// Per-customer static limits by metric name (inventory); nil is fine.
	Floors, Ceilings map[string]float64
}

// Verdict is a class that holds for a window, with the figure behind it.
type Verdict struct {
	Class    string
	Metric   window.Metric
	Score    float64
	Observed float64
	Expected float64
	Ceiling  bool // the static ceiling, not the baseline, raised it
	// Via is set when the class was named by the make-up of the traffic
	// increase (Share of it) while Metric, the total, is what is hot.
	Via   window.Metric
	Share float64
	// Surge: a volumetric verdict withheld as a benign surge.
	Surge bool
}

// Classifier evaluates class predicates; it holds configuration and a
// counter, and like the engine is not safe for concurrent use.
type Classifier struct {
	cfg    Config
	floors [window.NumMetrics]float64
	surges uint64 // final windows withheld as benign surges, see TakeSurges
}

// TakeSurges returns how many final windows were withheld as benign
// surges since the last call (the engine's metric).
func (c *Classifier) TakeSurges() uint64 {
	n := c.surges
	c.surges = 0
	return n
}

// New validates cfg.
func New(cfg Config) (*Classifier, error) {
	if err := cfg.Validate("classify"); err != nil {
		return nil, err
	}
	c := &Classifier{cfg: cfg}
	for name, v := range cfg.Floors {
		m, _ := window.MetricByName(name)
		c.floors[m] = v
	}
	return c, nil
}

// Config returns the configuration.
func (c *Classifier) Config() *Config { return &c.cfg }

func (c *Classifier) floor(in *Input, m window.Metric) float64 {
	if v, ok := in.Floors[m.String()]; ok {
		return v
	}
	return c.floors[m]
}

// hot reports whether metric m is anomalously high for class: backed by
// MinSamples sampled packets, and above its ceiling, or (warm baseline)
// above floor, MinRatio x expected and the class's start (or end, when
// ending) threshold.
func (c *Classifier) hot(in *Input, class string, m window.Metric, ending bool) (Verdict, bool) {
	v := in.F.Values[m]
	e := in.Exp[m]
	vd := Verdict{Class: class, Metric: m, Score: e.Score, Observed: v, Expected: e.Expected}
	if in.F.Samples[m] < c.cfg.MinSamples {
		// Too few sampled packets to say anything about the rate,
		// ceiling or baseline.
		return vd, false
	}
	t := c.cfg.Thresholds(class, in.Customer)
	if ceil, ok := in.Ceilings[m.String()]; ok && ceil > 0 && v >= ceil {
		vd.Ceiling = true
		vd.Score = max(vd.Score, t.Start)
		return vd, true
	}
	if !in.Warm || v < c.floor(in, m) {
		return vd, false
	}
	thr := t.Start
	ratio := c.cfg.MinRatio
	if ending {
		// Hysteresis: staying in the anomaly is easier than entering it.
		thr, ratio = t.End, 1+(c.cfg.MinRatio-1)/2
	}
	return vd, e.Score >= thr && v >= ratio*e.Expected
}

// hotter returns the higher-scoring hot verdict of several metrics.
func (c *Classifier) hotter(in *Input, class string, ending bool, ms ...window.Metric) (Verdict, bool) {
	var best Verdict
	found := false
	for _, m := range ms {
		if vd, ok := c.hot(in, class, m, ending); ok && (!found || vd.Score > best.Score) {
			best, found = vd, true
		}
	}
	return best, found
}

// Flood returns the flood-family class of the window, most specific first,
// or ok false. Carpet bombing comes first because it changes the
// mitigation (the whole prefix); volumetric is the fallback. A volumetric
// window that looks like a benign surge below Surge.NoticeRatio is
// withheld (Verdict.Surge, ok false).
func (c *Classifier) Flood(in *Input) (Verdict, bool) {
	f := in.F
	if f.Empty() {
		return Verdict{}, false
	}
	if in.Direction == pb.Direction_DIRECTION_INBOUND && f.Values[window.DistinctDst] >= c.cfg.CarpetMinDestinations &&
		f.TopDstShare <= c.cfg.CarpetMaxTopShare &&
		(!in.Warm || f.Values[window.DistinctDst] >= c.cfg.CarpetMinDstRatio*in.Exp[window.DistinctDst].Expected) {
		if vd, ok := c.hotter(in, CarpetBombing, false, window.Pps, window.Bps); ok {
			return vd, true
		}
	}
	if f.UDPShare >= c.cfg.UDPShare && f.TopSrcPortShare >= c.cfg.AmpPortShare && slices.Contains(c.cfg.AmpPorts, f.TopSrcPort) {
		if vd, ok := c.hotter(in, Amplification, false, window.Bps, window.PpsUDP, window.Pps); ok {
			return vd, true
		}
	}
	g := c.growthOf(in)
	for _, v := range []struct {
		class        string
		m            window.Metric
		window, grow float64 // share of the window's packets, of the increase
		need         float64
	}{
		{SynFlood, window.PpsSyn, f.SynShareOfTCP, g.syn, c.cfg.SynShare},
		{ICMPFlood, window.PpsICMP, f.ICMPShare, g.share[window.ICMP], c.cfg.ICMPShare},
		{FragmentFlood, window.PpsFrag, f.FragShare, g.frag, c.cfg.FragmentShare},
		{UDPFlood, window.PpsUDP, f.UDPShare, g.share[window.UDP], c.cfg.UDPShare},
	} {
		if vd, ok := c.vector(in, v.class, v.m, v.window, v.grow, v.need); ok {
			return vd, true
		}
	}
	vd, ok := c.hotter(in, Volumetric, false, window.Bps, window.Pps)
	if ok && !vd.Ceiling && c.benignSurge(in, &g) && surgeRatio(in) < c.cfg.Surge.NoticeRatio {
		vd.Surge = true
		return vd, false
	}
	return vd, ok
}

// vector names a vector flood (SYN, ICMP, fragments, UDP) carried by
// metric m: when m dominates the window or the increase and is hot on its
// own baseline; or when it makes up at least need of the increase, the
// total (pps or bps) is hot, and m itself is real (floor, samples,
// MinRatio x its expected) even if its sparse baseline's wide spread keeps
// its own score low.
func (c *Classifier) vector(in *Input, class string, m window.Metric, windowShare, growShare, need float64) (Verdict, bool) {
	if windowShare < need && growShare < need {
		return Verdict{}, false
	}
	if vd, ok := c.hot(in, class, m, false); ok {
		return vd, true
	}
	v := in.F.Values[m]
	if growShare < need || v < c.floor(in, m) || in.F.Samples[m] < c.cfg.MinSamples || v < c.cfg.MinRatio*in.Exp[m].Expected {
		return Verdict{}, false
	}
	vd, ok := c.hotter(in, class, false, window.Pps, window.Bps)
	vd.Via, vd.Share = m, growShare
	return vd, ok
}

// ScanVerdict returns a scan verdict: one dominant source, small flows, and
// distinct destinations or destination ports far above normal.
func (c *Classifier) ScanVerdict(in *Input) (Verdict, bool) {
	f := in.F
	if f.Empty() || f.TopFlowSrcPacketsPerFlow > c.cfg.ScanMaxPacketsPerFlow || f.TopFlowSrcShare < c.cfg.ScanMinTopSourceShare {
		return Verdict{}, false
	}
	var best Verdict
	found := false
	for _, x := range []struct {
		m   window.Metric
		min float64
	}{{window.DistinctDst, c.cfg.ScanMinDestinations}, {window.DistinctDstPorts, c.cfg.ScanMinPorts}} {
		if f.Values[x.m] < x.min {
			continue
		}
		if vd, ok := c.hot(in, Scan, x.m, false); ok && (!found || vd.Score > best.Score) {
			best, found = vd, true
		}
	}
	return best, found
}

// DropVerdict returns a traffic_drop verdict: a normally busy target whose
// packet rate fell to a fraction of its baseline.
func (c *Classifier) DropVerdict(in *Input, ending bool) (Verdict, bool) {
	e := in.Exp[window.Pps]
	v := in.F.Values[window.Pps]
	vd := Verdict{Class: TrafficDrop, Metric: window.Pps, Score: e.Score, Observed: v, Expected: e.Expected}
	if !in.Warm || e.Expected < c.cfg.DropMinExpectedPps {
		return vd, false
	}
	t := c.cfg.Thresholds(TrafficDrop, in.Customer)
	if ending {
		return vd, v <= 0.5*e.Expected && e.Score <= -t.End
	}
	return vd, v <= c.cfg.DropRatio*e.Expected && e.Score <= -t.Start
}

// stillHot re-checks an active anomaly's own class and metric against the
// end threshold.
func (c *Classifier) stillHot(in *Input, a *Anomaly) (Verdict, bool) {
	switch a.Class {
	case TrafficDrop:
		return c.DropVerdict(in, true)
	case CarpetBombing, Volumetric:
		return c.hotter(in, a.Class, true, window.Pps, window.Bps)
	case Amplification:
		return c.hotter(in, a.Class, true, window.Bps, window.PpsUDP, window.Pps)
	case Scan:
		return c.hotter(in, a.Class, true, window.DistinctDst, window.DistinctDstPorts)
	}
	return c.hot(in, a.Class, a.Metric, true)
}

func (c *Classifier) severity(in *Input, class string, vd Verdict) pb.Severity {
	switch class {
	case TrafficDrop:
		if vd.Observed <= 0.01*vd.Expected {
			return pb.Severity_SEVERITY_CRITICAL
		}
		return pb.Severity_SEVERITY_WARNING
	case Scan:
		if in.Direction == pb.Direction_DIRECTION_OUTBOUND {
			return pb.Severity_SEVERITY_WARNING
		}
		return pb.Severity_SEVERITY_INFO
	}
	if g := c.growthOf(in); class == Volumetric && !vd.Ceiling && c.benignSurge(in, &g) {
		// A surge too big to ignore but shaped like a flash crowd:
		// capacity, not an attack; it pages nobody.
		return pb.Severity_SEVERITY_INFO
	}
	ratio := vd.Observed / math.Max(vd.Expected, 1e-9)
	switch {
	case vd.Ceiling || ratio >= c.cfg.CriticalRatio:
		return pb.Severity_SEVERITY_CRITICAL
	case ratio >= c.cfg.WarningRatio:
		return pb.Severity_SEVERITY_WARNING
	}
	return pb.Severity_SEVERITY_INFO
}
