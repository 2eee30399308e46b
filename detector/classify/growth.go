package classify

import (
	"math"

	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// growth is the composition of a window's increase over its baseline:
// which protocols, SYN-only and fragment packets make up the packets
// above expected. An attack that starts late in a window, or a vector
// whose own sparse baseline has a wide spread, shows in the increase
// long before it dominates the window or scores on its own metric
// (FastNetMon likewise names an attack by the protocol that dominates
// the excess traffic).
type growth struct {
	ok        bool                       // pps is at least the relaxed ratio over expected
	share     [len(protoMetrics)]float64 // of the increase, by protocol class
	syn, frag float64                    // SYN-only and fragment packets' share of the increase
	based     bool                       // the baseline has a protocol mix to compare with
	base      [len(protoMetrics)]float64 // the baseline's protocol mix
	baseSyn   float64                    // the baseline's SYN-only share
	baseFrag  float64                    // the baseline's fragment share
	n         float64                    // sampled packets in the increase
}

// protoMetrics are the per-protocol packet rates, in window's class order.
var protoMetrics = [...]window.Metric{window.PpsTCP, window.PpsUDP, window.PpsICMP, window.PpsOther}

func surplus(in *Input, m window.Metric) float64 { return max(0, in.F.Values[m]-in.Exp[m].Expected) }

// growthOf computes the increase's composition. Only a material increase
// (pps at least 1 + (min_ratio-1)/2 times expected, the relaxed ratio
// that keeps an anomaly open) has one: the make-up of a wobble is noise.
func (c *Classifier) growthOf(in *Input) growth {
	var g growth
	if !in.Warm || in.F.Empty() {
		return g
	}
	relaxed := 1 + (c.cfg.MinRatio-1)/2
	if in.F.Values[window.Pps] < relaxed*in.Exp[window.Pps].Expected {
		return g
	}
	var up, exp float64
	for i, m := range protoMetrics {
		g.share[i] = surplus(in, m)
		up += g.share[i]
		g.base[i] = in.Exp[m].Expected
		exp += g.base[i]
	}
	if up <= 0 {
		return g
	}
	g.ok = true
	g.n = in.F.Samples[window.Pps] * (1 - in.Exp[window.Pps].Expected/in.F.Values[window.Pps])
	for i := range g.share {
		g.share[i] /= up
	}
	g.syn = min(1, surplus(in, window.PpsSyn)/up)
	g.frag = min(1, surplus(in, window.PpsFrag)/up)
	if exp > 0 {
		g.based = true
		for i := range g.base {
			g.base[i] /= exp
		}
		g.baseSyn = min(1, in.Exp[window.PpsSyn].Expected/exp)
		g.baseFrag = min(1, in.Exp[window.PpsFrag].Expected/exp)
	}
	return g
}

// mixShift is how far the increase's make-up is from the baseline's: the
// total-variation distance of the protocol mix, or the change of the
// SYN-only or fragment share if larger (0 = same mix, 1 = disjoint).
func (g *growth) mixShift() float64 {
	var tv float64
	for i := range g.share {
		tv += math.Abs(g.share[i] - g.base[i])
	}
	return max(tv/2, math.Abs(g.syn-g.baseSyn), math.Abs(g.frag-g.baseFrag))
}

// benignSurge reports whether a volumetric window looks like a flash
// crowd: an increase with the baseline's mix and mean packet size, from
// proportionally more remote peers each sending at its usual rate. A
// flood changes at least one: a protocol or flag (SYN, UDP reflection,
// ICMP, GRE, fragments), a packet size, or packets per source (a botnet
// sends more per host than a visitor). The peers are the remote side:
// sources of inbound traffic, destinations of outbound traffic.
func (c *Classifier) benignSurge(in *Input, g *growth) bool {
	s := c.cfg.Surge
	if s.NoticeRatio == 0 || !g.ok || !g.based {
		return false
	}
	// A mix or mean size measured on n sampled packets is off by about
	// 1/sqrt(n) by chance (and a sparse baseline's mix is biased towards
	// its main protocol): allow for it, or a flash crowd on a small
	// sampled subnet never looks like one. Floods shift the mix by 0.8
	// or more, far beyond this allowance.
	tol := 1 / math.Sqrt(max(1, g.n))
	if g.mixShift() > s.MaxMixShift+tol {
		return false
	}
	v, e := &in.F.Values, in.Exp
	upPps, upBps := v[window.Pps]-e[window.Pps].Expected, v[window.Bps]-e[window.Bps].Expected
	if upPps <= 0 || upBps <= 0 || e[window.Pps].Expected <= 0 || e[window.Bps].Expected <= 0 {
		return false
	}
	size, baseSize := upBps/upPps, e[window.Bps].Expected/e[window.Pps].Expected
	if f := s.MaxSizeChange * (1 + tol); size > baseSize*f || size*f < baseSize {
		return false
	}
	peers := window.DistinctSrc
	if in.Direction == pb.Direction_DIRECTION_OUTBOUND {
		peers = window.DistinctDst
	}
	if v[peers] < 1 || e[peers].Expected < 1 {
		return false
	}
	perPeer := (v[window.Pps] / v[peers]) / (e[window.Pps].Expected / e[peers].Expected)
	return perPeer <= s.MaxPeerRate
}

// surgeRatio sizes a surge: the smaller of its pps and bps ratios to
// expected. A crowd raises both alike (benignSurge checks the mean packet
// size); the smaller is the one less inflated by sampling noise.
func surgeRatio(in *Input) float64 {
	r := math.Inf(1)
	for _, m := range []window.Metric{window.Pps, window.Bps} {
		r = min(r, in.F.Values[m]/max(in.Exp[m].Expected, 1e-9))
	}
	return r
}
