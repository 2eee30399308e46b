// Package synth generates synthetic flows (normal traffic with a daily
// cycle and noise, and each attack class) with chosen event times, so that
// tests and benchmarks run weeks of event time in seconds of wall time.
package synth

import (
	"math"
	"math/rand/v2"
	"net/netip"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// Gen produces flows for one protected subnet. Flows are sampled records:
// each stands for many packets, as on a real 1:N sampled ISP edge.
type Gen struct {
	Subnet   netip.Prefix
	Customer string
	rng      *rand.Rand
	hosts    []netip.Addr // active customer hosts
	remotes  []netip.Addr // Internet peers
}

// New returns a generator with a fixed seed (deterministic tests).
func New(subnet string, customer string, seed uint64) *Gen {
	p := netip.MustParsePrefix(subnet)
	g := &Gen{Subnet: p, Customer: customer, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))}
	for i := 0; i < 40; i++ {
		g.hosts = append(g.hosts, g.Host(10+i))
	}
	for i := 0; i < 2000; i++ {
		g.remotes = append(g.remotes, g.randomRemote())
	}
	return g
}

// Host returns the i-th address of the subnet.
func (g *Gen) Host(i int) netip.Addr {
	a := g.Subnet.Addr()
	for j := 0; j < i; j++ {
		a = a.Next()
	}
	return a
}

func (g *Gen) randomRemote() netip.Addr {
	if g.Subnet.Addr().Is6() {
		var b [16]byte
		b[0], b[1] = 0x2a, 0x02
		for i := 2; i < 16; i++ {
			b[i] = byte(g.rng.UintN(256))
		}
		return netip.AddrFrom16(b)
	}
	return netip.AddrFrom4([4]byte{byte(11 + g.rng.UintN(180)), byte(g.rng.UintN(256)), byte(g.rng.UintN(256)), byte(1 + g.rng.UintN(254))})
}

func (g *Gen) flow(t int64, src, dst netip.Addr, proto, sport, dport, flags uint32, packets, bytes uint64, dir pb.Direction) *pb.Flow {
	et := uint32(0x0800)
	if src.Is6() {
		et = 0x86dd
	}
	return &pb.Flow{Type: pb.Flow_IPFIX, TimeReceivedNs: uint64(t) + 1e9, TimeFlowStartNs: uint64(t), TimeFlowEndNs: uint64(t),
		SamplingRate: 1000, SamplingApplied: true, Bytes: bytes, Packets: packets,
		SrcAddr: src.AsSlice(), DstAddr: dst.AsSlice(), Etype: et, Proto: proto, SrcPort: sport, DstPort: dport,
		TcpFlags: flags, Customer: g.Customer, Subnet: g.Subnet.String(), Direction: dir}
}

// DailyPps is a diurnal packet rate: base at the daily mean, +-amp (0..1)
// around it, peaking at 20:00 UTC.
func DailyPps(base, amp float64, t int64) float64 {
	h := float64(t%(86400*1e9)) / 3600e9
	return base * (1 + amp*math.Cos(2*math.Pi*(h-20)/24))
}

// Normal returns one second of normal inbound traffic at about pps packets
// per second (with noise): mostly TCP to a few dozen hosts from many peers,
// some UDP (DNS, QUIC) and a little ICMP. pktPerFlow sets how many packets
// one record stands for.
func (g *Gen) Normal(t int64, pps float64, pktPerFlow float64) []*pb.Flow {
	pps *= math.Exp(0.1 * g.rng.NormFloat64()) // ~10 % lognormal noise
	n := int(pps / pktPerFlow)
	if g.rng.Float64() < pps/pktPerFlow-float64(n) {
		n++
	}
	out := make([]*pb.Flow, 0, n)
	in := pb.Direction_DIRECTION_INBOUND
	for i := 0; i < n; i++ {
		ts := t + g.rng.Int64N(1e9)
		src := g.remotes[g.rng.IntN(len(g.remotes))]
		dst := g.hosts[int(math.Abs(g.rng.NormFloat64())*8)%len(g.hosts)]
		pk := uint64(pktPerFlow * (0.5 + g.rng.Float64()))
		switch r := g.rng.Float64(); {
		case r < 0.70:
			out = append(out, g.flow(ts, src, dst, 6, 443, 1024+g.rng.Uint32N(60000), 0x18, pk, pk*900, in))
		case r < 0.80:
			out = append(out, g.flow(ts, src, dst, 17, 53, 1024+g.rng.Uint32N(60000), 0, pk, pk*120, in))
		case r < 0.97:
			out = append(out, g.flow(ts, src, dst, 17, 443, 1024+g.rng.Uint32N(60000), 0, pk, pk*1100, in))
		default:
			out = append(out, g.flow(ts, src, dst, 1, 0, 0, 0, pk, pk*84, in))
		}
	}
	return out
}

// Attack kinds Attack can generate.
const (
	AttackVolumetric    = "volumetric" // GRE flood to one host
	AttackSyn           = "syn_flood"
	AttackUDP           = "udp_flood"
	AttackICMP          = "icmp_flood"
	AttackFragment      = "fragment_flood"
	AttackAmplification = "amplification"
	AttackCarpet        = "carpet_bombing"
	AttackScanIn        = "scan_inbound"
	AttackScanOut       = "scan_outbound"
)

// Victim is the attacked host of single-target attacks.
func (g *Gen) Victim() netip.Addr { return g.Host(10) }

// Attack returns one second of attack traffic of kind at about pps.
func (g *Gen) Attack(kind string, t int64, pps float64) []*pb.Flow {
	in := pb.Direction_DIRECTION_INBOUND
	var out []*pb.Flow
	victim := g.Victim()
	ts := func() int64 { return t + g.rng.Int64N(1e9) }
	switch kind {
	case AttackSyn:
		// Spoofed random sources, one sampled packet per record.
		for i := 0; i < int(pps/200); i++ {
			out = append(out, g.flow(ts(), g.randomRemote(), victim, 6, 1024+g.rng.Uint32N(60000), 80, 0x02, 200, 200*60, in))
		}
	case AttackUDP:
		for i := 0; i < int(pps/500); i++ {
			out = append(out, g.flow(ts(), g.randomRemote(), victim, 17, 1024+g.rng.Uint32N(60000), 1+g.rng.Uint32N(65000), 0, 500, 500*512, in))
		}
	case AttackICMP:
		for i := 0; i < int(pps/500); i++ {
			out = append(out, g.flow(ts(), g.randomRemote(), victim, 1, 0, 0, 0, 500, 500*1000, in))
		}
	case AttackFragment:
		for i := 0; i < int(pps/500); i++ {
			f := g.flow(ts(), g.randomRemote(), victim, 17, 0, 0, 0, 500, 500*1480, in)
			f.FragmentOffset = 185
			out = append(out, f)
		}
	case AttackAmplification:
		ports := []uint32{53, 123}
		for i := 0; i < int(pps/500); i++ {
			refl := g.remotes[g.rng.IntN(300)]
			out = append(out, g.flow(ts(), refl, victim, 17, ports[i%2], 1024+g.rng.Uint32N(60000), 0, 500, 500*1400, in))
		}
	case AttackVolumetric:
		for i := 0; i < int(pps/500); i++ {
			out = append(out, g.flow(ts(), g.remotes[g.rng.IntN(50)], victim, 47, 0, 0, 0, 500, 500*1400, in))
		}
	case AttackCarpet:
		size := 1 << (g.Subnet.Addr().BitLen() - g.Subnet.Bits())
		size = min(size, 256)
		for i := 0; i < int(pps/500); i++ {
			dst := g.Host(g.rng.IntN(size))
			out = append(out, g.flow(ts(), g.randomRemote(), dst, 17, 1024+g.rng.Uint32N(60000), 1+g.rng.Uint32N(65000), 0, 500, 500*700, in))
		}
	case AttackScanIn:
		// One scanner, one probe per (host, port), unsampled.
		scanner := g.remotes[7]
		size := min(1<<(g.Subnet.Addr().BitLen()-g.Subnet.Bits()), 256)
		for i := 0; i < int(pps); i++ {
			out = append(out, g.flow(ts(), scanner, g.Host(g.rng.IntN(size)), 6, 40000+g.rng.Uint32N(1000), 1+g.rng.Uint32N(1024), 0x02, 1, 44, in))
		}
	case AttackScanOut:
		host := g.Host(30)
		for i := 0; i < int(pps); i++ {
			out = append(out, g.flow(ts(), host, g.randomRemote(), 6, 40000+g.rng.Uint32N(1000), 23, 0x02, 1, 44, pb.Direction_DIRECTION_OUTBOUND))
		}
	}
	return out
}

// NormalOut returns one second of normal outbound traffic from the subnet.
func (g *Gen) NormalOut(t int64, pps float64, pktPerFlow float64) []*pb.Flow {
	flows := g.Normal(t, pps, pktPerFlow)
	for _, f := range flows {
		f.SrcAddr, f.DstAddr = f.DstAddr, f.SrcAddr
		f.SrcPort, f.DstPort = f.DstPort, f.SrcPort
		f.Direction = pb.Direction_DIRECTION_OUTBOUND
	}
	return flows
}
