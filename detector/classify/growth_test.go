package classify

import (
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// subnet is the protected /24 of these tests; hosts are .10 to .19.
var subnet = netip.MustParsePrefix("203.0.113.0/24")

// traffic folds one 10 s window of flows into an aggregate.
type traffic func(a *window.Agg, rng *rand.Rand)

// sampling is the exporter's 1:N rate (1: unsampled).
const sampling = 100

// flows folds n sampled records of one sampled packet each (scaled by
// sampling as the collector does), from src(i) to dst(i).
func flows(a *window.Agg, rng *rand.Rand, n int, proto, sport, dport, flags, size uint32, frag bool,
	src, dst func(i int) netip.Addr) {
	for i := 0; i < n; i++ {
		f := &pb.Flow{Proto: proto, SrcPort: sport, DstPort: dport, TcpFlags: flags,
			Packets: sampling, Bytes: uint64(size) * sampling, SamplingRate: sampling, SamplingApplied: true,
			SrcAddr: src(i).AsSlice(), DstAddr: dst(i).AsSlice()}
		if frag {
			f.FragmentOffset = 185
		}
		a.Fold(f, rng.IntN(10))
	}
}

// remote returns the i-th of a pool of Internet addresses (pool offsets
// keep crowds, botnets and the usual clients apart).
func remote(pool, i int) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(11 + pool), byte(i >> 16), byte(i >> 8), byte(i)})
}

func host(i int) netip.Addr {
	b := subnet.Addr().As4()
	b[3] = byte(10 + i%10)
	return netip.AddrFrom4(b)
}

// web is a hosting subnet's inbound traffic at pps, from peers distinct
// clients of pool: 80 % TCP 443 (ACK, 700 B), 17 % UDP 443 (QUIC,
// 1200 B), 3 % ICMP echo (84 B).
func web(pps float64, peers, pool int) traffic { return webICMP(pps, peers, pool, false) }

// webICMP is web with bursty ICMP if bursty: none in half the windows,
// twice as much in the others (a sparse series with a wide spread).
func webICMP(pps float64, peers, pool int, bursty bool) traffic {
	return webSized(pps, peers, pool, bursty, 700, 1200)
}

// webSized is web with the given TCP and UDP packet sizes.
func webSized(pps float64, peers, pool int, bursty bool, tcpSize, udpSize uint32) traffic {
	return func(a *window.Agg, rng *rand.Rand) {
		n := int(pps * 10 / sampling)
		cl := func(int) netip.Addr { return remote(pool, rng.IntN(peers)) }
		h := func(int) netip.Addr { return host(rng.IntN(10)) }
		flows(a, rng, n*80/100, 6, 40000, 443, 0x10, tcpSize, false, cl, h)
		flows(a, rng, n*17/100, 17, 40000, 443, 0, udpSize, false, cl, h)
		icmp := n * 3 / 100
		if bursty {
			icmp *= 2 * rng.IntN(2)
		}
		flows(a, rng, icmp, 1, 0, 0, 0, 84, false, cl, h)
	}
}

// attack is pps of one vector towards host 0 from srcs distinct sources.
func attack(pps float64, srcs int, proto, sport, dport, flags, size uint32, frag bool) traffic {
	return func(a *window.Agg, rng *rand.Rand) {
		flows(a, rng, int(pps*10/sampling), proto, sport, dport, flags, size, frag,
			func(i int) netip.Addr { return remote(100, rng.IntN(srcs)) },
			func(int) netip.Addr { return host(0) })
	}
}

// learned returns a warm baseline of 360 windows of normal traffic
// (lognormal noise of 10 %).
func learned(t *testing.T, normal func(scale float64) traffic) (*baseline.Model, *baseline.State) {
	t.Helper()
	cfg := baseline.DefaultConfig()
	m, err := baseline.NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var st baseline.State
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < cfg.WarmupWindows; i++ {
		a := window.NewAgg(10)
		a.Reset(int64(i) * 10e9)
		normal(1+0.1*rng.NormFloat64())(a, rng)
		f := window.Compute(a, int64(i)*10e9, 10)
		m.Learn(&st, m.Slot(f.Start), &f.Values)
	}
	return m, &st
}

// judged returns the Input of one window of the given traffic, scored
// against the baseline.
func judged(m *baseline.Model, st *baseline.State, dir pb.Direction, parts ...traffic) *Input {
	rng := rand.New(rand.NewPCG(3, 4))
	a := window.NewAgg(10)
	start := int64(400) * 10e9
	a.Reset(start)
	for _, p := range parts {
		p(a, rng)
	}
	f := window.Compute(a, start, 10)
	exp := m.Score(st, m.Slot(start), &f.Values)
	return &Input{Subnet: subnet.String(), Direction: dir, F: &f, Exp: &exp, Warm: m.Warm(st)}
}

// A flood is named after the make-up of the traffic increase, and a
// volumetric window that has the make-up of a flash crowd (the baseline's
// mix and packet size, proportionally more peers each at its usual rate)
// is withheld below surge.notice_ratio and only noticed (severity info)
// above. Attacks from many sources still change the mix, the size or the
// rate per source, and are not withheld.
func TestFloodClassFromIncreaseAndBenignSurge(t *testing.T) {
	c, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const base = 20000.0 // pps
	normal := func(s float64) traffic { return web(base*s, 2000, 0) }
	m, st := learned(t, normal)
	bursty := func(s float64) traffic { return webICMP(base*s, 2000, 0, true) }
	mb, stb := learned(t, bursty)
	in := pb.Direction_DIRECTION_INBOUND
	cases := []struct {
		name     string
		window   []traffic
		class    string // "" = nothing opens
		surge    bool   // withheld as a benign surge
		via      window.Metric
		severity pb.Severity // of volumetric verdicts
		bursty   bool        // the baseline with bursty ICMP
	}{
		{"normal", []traffic{normal(1)}, "", false, 0, 0, false},
		{"flash crowd 3x: new clients, same mix", []traffic{normal(1), web(2*base, 4000, 1)}, "", true, 0, 0, false},
		{"flash crowd 6x", []traffic{normal(1), web(5*base, 10000, 1)}, "", true, 0, 0, false},
		{"flash crowd 12x: noticed, info", []traffic{normal(1), web(11*base, 22000, 1)}, Volumetric, false, 0, pb.Severity_SEVERITY_INFO, false},
		{"same mix from 20 bots: rate per source", []traffic{normal(1), web(2*base, 20, 1)}, Volumetric, false, 0, pb.Severity_SEVERITY_WARNING, false},
		{"spoofed ACK flood: 60 B packets", []traffic{normal(1), attack(2*base, 100000, 6, 40000, 443, 0x10, 60, false)}, Volumetric, false, 0, pb.Severity_SEVERITY_WARNING, false},
		{"GRE from many sources", []traffic{normal(1), attack(2*base, 100000, 47, 0, 0, 0, 700, false)}, Volumetric, false, 0, pb.Severity_SEVERITY_WARNING, false},
		{"spoofed SYN flood from many sources", []traffic{normal(1), attack(2*base, 100000, 6, 1234, 80, 0x02, 60, false)}, SynFlood, false, 0, 0, false},
		{"reflection from many reflectors", []traffic{normal(1), attack(2*base, 5000, 17, 123, 40000, 0, 468, false)}, Amplification, false, 0, 0, false},
		{"ICMP flood on its own baseline", []traffic{normal(1), attack(2*base, 2000, 1, 0, 0, 0, 84, false)}, ICMPFlood, false, 0, 0, false},
		// The same flood where ICMP is sparse and bursty: its own score
		// stays low (wide spread), the total is hot and its increase is
		// all ICMP.
		{"ICMP flood named by the increase", []traffic{bursty(1), attack(2*base, 2000, 1, 0, 0, 0, 84, false)}, ICMPFlood, false, window.PpsICMP, 0, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			x := judged(m, st, in, tc.window...)
			if tc.bursty {
				x = judged(mb, stb, in, tc.window...)
			}
			vd, ok := c.Flood(x)
			if tc.class == "" {
				if ok || vd.Surge != tc.surge {
					t.Fatalf("got %s (ok %v, surge %v) on %s %.0f vs %.0f, want nothing (surge %v)", vd.Class, ok, vd.Surge,
						vd.Metric, vd.Observed, vd.Expected, tc.surge)
				}
				return
			}
			if !ok || vd.Class != tc.class || vd.Surge {
				g := c.growthOf(x)
				t.Fatalf("got %q (ok %v, surge %v), want %s; mix shift %.2f, pps %.0f vs %.0f", vd.Class, ok, vd.Surge, tc.class,
					g.mixShift(), x.F.Values[window.Pps], x.Exp[window.Pps].Expected)
			}
			if tc.via != 0 && (vd.Via != tc.via || vd.Share < c.cfg.ICMPShare || vd.Metric != window.Pps) {
				t.Errorf("named via %s (share %.2f) on %s, want %s on pps", vd.Via, vd.Share, vd.Metric, tc.via)
			}
			if s := c.severity(x, vd.Class, vd); tc.severity != 0 && s != tc.severity {
				t.Errorf("severity %s, want %s", s, tc.severity)
			}
		})
	}
}

// Without a material increase (pps under 1.5x expected) the increase has
// no make-up to name a class by: the same ICMP packets on a wobble of the
// total stay unclassified unless ICMP dominates the window.
func TestGrowthNeedsMaterialIncrease(t *testing.T) {
	c, _ := New(DefaultConfig())
	m, st := learned(t, func(s float64) traffic { return web(20000*s, 2000, 0) })
	for _, tc := range []struct {
		name string
		icmp float64 // extra ICMP pps on top of normal traffic
		ok   bool
	}{
		{"+0.2x ICMP on a 1.2x total", 4000, false},
		{"+1x ICMP on a 2x total", 20000, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			x := judged(m, st, pb.Direction_DIRECTION_INBOUND, web(20000, 2000, 0), attack(tc.icmp, 2000, 1, 0, 0, 0, 84, false))
			g := c.growthOf(x)
			vd, ok := c.Flood(x)
			if g.ok != tc.ok || (ok && vd.Class != ICMPFlood) || ok != tc.ok {
				t.Fatalf("growth %v (ICMP share %.2f), flood %q %v; want %v", g.ok, g.share[window.ICMP], vd.Class, ok, tc.ok)
			}
		})
	}
}

// A rate alerts only on min_samples packets the exporter really sampled:
// floors are in scaled units, and two records at 1:1000 read as 200 pps.
func TestMinSamples(t *testing.T) {
	c, _ := New(DefaultConfig())
	for _, tc := range []struct {
		name     string
		records  int
		rate     uint64
		ceilings map[string]float64
		hot      bool
	}{
		{"2 records at 1:1000 (200 pps)", 2, 1000, nil, false},
		{"3 records at 1:1000 (300 pps)", 3, 1000, nil, false},
		{"10 records at 1:1000 (1000 pps)", 10, 1000, nil, true},
		{"2 records over the ceiling", 2, 1000, map[string]float64{"pps_icmp": 100}, false},
		{"2000 unsampled packets (200 pps)", 2000, 1, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := window.NewAgg(10)
			a.Reset(0)
			for i := 0; i < tc.records; i++ {
				a.Fold(&pb.Flow{Proto: 1, Packets: tc.rate, Bytes: 84 * tc.rate, SamplingRate: tc.rate, SamplingApplied: tc.rate > 1,
					SrcAddr: host(i).AsSlice(), DstAddr: remote(0, i).AsSlice()}, i%10)
			}
			f := window.Compute(a, 0, 10)
			var exp [window.NumMetrics]baseline.Expectation
			exp[window.PpsICMP] = baseline.Expectation{Expected: 0.3, Score: 20}
			x := &Input{Subnet: subnet.String(), Direction: pb.Direction_DIRECTION_OUTBOUND, F: &f, Exp: &exp, Warm: true, Ceilings: tc.ceilings}
			if _, hot := c.hot(x, ICMPFlood, window.PpsICMP, false); hot != tc.hot {
				t.Fatalf("pps_icmp %.0f from %.0f samples: hot %v, want %v", f.Values[window.PpsICMP], f.Samples[window.PpsICMP], hot, tc.hot)
			}
		})
	}
}

// A flood is often first seen on a partial window: a fragment flood that
// began 3 s before the window ended adds 30 % to the packets of a subnet
// of small requests (0.23 of them fragments, below fragment_share) and
// triples its bytes, so only volumetric holds. The next, full windows say
// fragment_flood: during its first refine_windows windows the anomaly
// takes that class, keeping its id (one incident), with an UPDATE that
// says so. Later, or from a class other than volumetric, it never changes.
func TestRefineYoungVolumetric(t *testing.T) {
	const base = 20000.0
	normal := func(s float64) traffic { return webSized(base*s, 2000, 0, false, 200, 200) }
	m, st := learned(t, normal)
	in := pb.Direction_DIRECTION_INBOUND
	partial := judged(m, st, in, normal(1), attack(0.3*base, 1000, 17, 0, 0, 0, 1500, true))
	full := judged(m, st, in, normal(1), attack(3*base, 1000, 17, 0, 0, 0, 1500, true))
	syn := judged(m, st, in, normal(1), attack(3*base, 100000, 6, 1234, 80, 0x02, 60, false))
	udp := judged(m, st, in, normal(1), attack(3*base, 100000, 17, 1234, 9999, 0, 500, false))
	cases := []struct {
		name    string
		refine  int
		windows []*Input
		want    []string // events per window: kind and class
		class   string   // of the anomaly at the end
	}{
		{"refined on the next window", 3, []*Input{partial, full, full},
			[]string{"START volumetric", "UPDATE fragment_flood", ""}, FragmentFlood},
		{"refine_windows 0: never", 0, []*Input{partial, full, full},
			[]string{"START volumetric", "", ""}, Volumetric},
		{"too old: not refined", 3, []*Input{partial, partial, partial, partial, full},
			[]string{"START volumetric", "", "", "", ""}, Volumetric},
		{"a specific class is never changed", 3, []*Input{syn, udp, udp},
			[]string{"START syn_flood", "", ""}, SynFlood},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.RefineWindows = tc.refine
			c, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			var tr Tracker
			var id string
			for i, x := range tc.windows {
				w := *x.F
				w.Start = int64(i) * 10e9
				y := *x
				y.F = &w
				got := ""
				for _, ev := range c.Step(&tr, &y, true, "t") {
					got += ev.Kind.String() + " " + ev.Class
					if id == "" {
						id = ev.Id
					} else if ev.Id != id {
						t.Errorf("window %d: %s has id %s, want the anomaly's %s", i, ev.Kind, ev.Id, id)
					}
					if ev.Kind == pb.AnomalyEvent_UPDATE && !strings.HasPrefix(ev.Reason, "reclassified from volumetric: ") {
						t.Errorf("UPDATE reason %q", ev.Reason)
					}
				}
				if got != tc.want[i] {
					t.Errorf("window %d: events %q, want %q", i, got, tc.want[i])
				}
			}
			if a := tr.Fam[FamilyFlood].Active; a == nil || a.Class != tc.class {
				t.Fatalf("anomaly %+v, want class %s", a, tc.class)
			}
		})
	}
}
