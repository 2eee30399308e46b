package scenario

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
)

// Record is one flow record as an exporter sends it: bytes and packets are
// the exporter's (sampled) counts; the collector scales them by the rate.
type Record struct {
	Exporter int // index in Scenario.Exporters
	Attack   int // index in Scenario.Attacks; -1 for background traffic
	Flow     flowgen.Flow
	// FragmentOffset (8-byte units) marks a non-initial IP fragment
	// (fragment_flood): flowgen.Flow has no fragment fields, so exporters
	// that carry them need their own template (benchmarks/quality/export).
	FragmentOffset uint16
}

// Generator produces a scenario's records for consecutive time steps. It is
// deterministic for a seed and a sequence of steps, and not safe for
// concurrent use.
type Generator struct {
	sc   *Scenario
	live time.Time
	rng  *rand.Rand
	// Internet address pools: web clients, popular services, attack sources
	// per attack (spoofed sources, reflectors, botnet).
	clients4, clients6   []netip.Addr
	services4, services6 []netip.Addr
	attackers            [][]netip.Addr
}

// NewGenerator returns a generator of sc's traffic. Attacks start only
// once StartLive has said when live traffic begins: everything before is
// history (background traffic only).
func NewGenerator(sc *Scenario) *Generator {
	g := &Generator{sc: sc, rng: rand.New(rand.NewPCG(uint64(sc.Seed), 0x5eed))}
	g.clients4, g.clients6 = g.pool(4000, false), g.pool(4000, true)
	g.services4, g.services6 = g.pool(300, false), g.pool(300, true)
	for i := range sc.Attacks {
		a := &sc.Attacks[i]
		g.attackers = append(g.attackers, g.pool(max(a.Sources, 1), a.target.Addr().Is6()))
	}
	return g
}

// StartLive sets when live traffic starts: attack offsets count from it.
func (g *Generator) StartLive(t time.Time) { g.live = t }

// Live is when live traffic starts (zero before StartLive).
func (g *Generator) Live() time.Time { return g.live }

// pool returns n distinct-enough public addresses outside every customer
// subnet.
func (g *Generator) pool(n int, v6 bool) []netip.Addr {
	out := make([]netip.Addr, 0, n)
	for len(out) < n {
		a := g.publicAddr(v6)
		out = append(out, a)
	}
	return out
}

// publicAddr draws a random global unicast address that no customer owns.
func (g *Generator) publicAddr(v6 bool) netip.Addr {
	for {
		var a netip.Addr
		if v6 {
			var b [16]byte
			binary.BigEndian.PutUint64(b[:8], g.rng.Uint64())
			binary.BigEndian.PutUint64(b[8:], g.rng.Uint64())
			b[0] = 0x20 | b[0]&0x0f // 2000::/4, inside global unicast 2000::/3
			a = netip.AddrFrom16(b)
			if netip.MustParsePrefix("2001:db8::/32").Contains(a) {
				continue
			}
		} else {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], g.rng.Uint32())
			if b[0] < 1 || b[0] >= 224 || b[0] == 10 || b[0] == 127 || b[0] == 0 ||
				(b[0] == 100 && b[1]&0xc0 == 64) || (b[0] == 169 && b[1] == 254) ||
				(b[0] == 172 && b[1]&0xf0 == 16) || (b[0] == 192 && b[1] == 168) || (b[0] == 198 && b[1]&0xfe == 18) {
				continue
			}
			a = netip.AddrFrom4(b)
		}
		if g.sc.CustomerOf(a) == nil {
			return a
		}
	}
}

// Rate returns the background packet rate factor at t: the diurnal shape
// (daily mean 1) times the weekly factor.
func (g *Generator) Rate(t time.Time) float64 { return g.sc.shape(nil, t) }

// shape is the background rate factor of subnet sn (nil: the scenario's
// peak hour) at t.
func (s *Scenario) shape(sn *Subnet, t time.Time) float64 {
	d := s.Diurnal
	peak := d.PeakHour
	if sn != nil && sn.PeakHour != nil {
		peak = *sn.PeakHour
	}
	u := t.UTC()
	h := float64(u.Hour()) + float64(u.Minute())/60 + float64(u.Second())/3600
	return (1 + d.Amplitude*math.Cos(2*math.Pi*(h-peak)/24)) * s.weekly(u)
}

// weekly interpolates the day factors between the days' noons.
func (s *Scenario) weekly(u time.Time) float64 {
	if len(s.Weekly) != 7 {
		return 1
	}
	// Days since Monday 00:00, minus half a day: 0 at Monday noon.
	x := float64((int(u.Weekday())+6)%7) + (float64(u.Hour())+float64(u.Minute())/60)/24 - 0.5
	if x < 0 {
		x += 7
	}
	i := int(x)
	f := x - float64(i)
	return s.Weekly[i%7]*(1-f) + s.Weekly[(i+1)%7]*f
}

// BaseRate is the background packet rate (unsampled, noise-free) of
// subnet sn in one direction at t.
func (s *Scenario) BaseRate(sn *Subnet, inbound bool, t time.Time) float64 {
	pps := sn.OutPPS
	if inbound {
		pps = sn.InPPS
	}
	return pps * s.shape(sn, t)
}

// AttackedSubnet returns the customer subnet an attack acts on.
func (s *Scenario) AttackedSubnet(a *Attack) *Subnet {
	return &s.Customers[a.customer].Subnets[a.subnetIdx]
}

// AttackRate is the attack's packet rate at t (unsampled): its pps, or its
// magnitude times the attacked direction's background (a flash crowd
// adds magnitude-1 times the background in each of its directions).
func (s *Scenario) AttackRate(a *Attack, inbound bool, t time.Time) float64 {
	if a.Magnitude == 0 {
		return a.PPS
	}
	m := a.Magnitude
	if a.Kind == FlashCrowd {
		m--
	}
	return m * s.BaseRate(s.AttackedSubnet(a), inbound, t)
}

// dip is the share of sn's background left at t in one direction
// (traffic_drop and maintenance events; 1 outside them).
func (g *Generator) dip(sn *Subnet, inbound bool, t time.Time) float64 {
	f := 1.0
	if g.live.IsZero() {
		return f
	}
	for _, ai := range sn.dips {
		a := &g.sc.Attacks[ai]
		if t.Before(g.live.Add(a.Start)) || !t.Before(g.live.Add(a.End())) {
			continue
		}
		if a.Expect.Direction == "both" || (a.Expect.Direction == "inbound") == inbound {
			f *= *a.Level
		}
	}
	return f
}

// Step appends the records of every flow that ends in [from, to) to out.
func (g *Generator) Step(from, to time.Time, out []Record) []Record {
	dt := to.Sub(from).Seconds()
	if dt <= 0 {
		return out
	}
	for ci := range g.sc.Customers {
		c := &g.sc.Customers[ci]
		ex := &g.sc.Exporters[c.exporter]
		for si := range c.Subnets {
			sn := &c.Subnets[si]
			shape := g.sc.shape(sn, from)
			for _, inbound := range []bool{true, false} {
				pps := sn.OutPPS
				if inbound {
					pps = sn.InPPS
				}
				noise := 1.0
				if g.sc.Noise > 0 {
					noise = math.Exp(g.rng.NormFloat64()*g.sc.Noise - g.sc.Noise*g.sc.Noise/2)
				}
				if len(sn.dips) > 0 {
					pps *= g.dip(sn, inbound, from)
				}
				sampled := g.poisson(pps * shape * noise * dt / float64(ex.Sampling))
				out = g.background(out, c.exporter, ex, sn, inbound, sampled, from, to, nil, -1)
			}
		}
	}
	for ai := range g.sc.Attacks {
		if g.live.IsZero() {
			break
		}
		a := &g.sc.Attacks[ai]
		s, e := g.live.Add(a.Start), g.live.Add(a.End())
		lo, hi := maxTime(from, s), minTime(to, e)
		if !lo.Before(hi) {
			continue
		}
		c := &g.sc.Customers[a.customer]
		ex := &g.sc.Exporters[c.exporter]
		switch a.Kind {
		case TrafficDrop, Maintenance: // less background, see dip
			continue
		case FlashCrowd:
			sn := g.sc.AttackedSubnet(a)
			for _, d := range a.Directions() {
				in := d == "inbound"
				n := g.poisson(g.sc.AttackRate(a, in, lo) * hi.Sub(lo).Seconds() / float64(ex.Sampling))
				out = g.background(out, c.exporter, ex, sn, in, n, lo, hi, g.attackers[ai], ai)
			}
			continue
		}
		n := g.poisson(g.sc.AttackRate(a, a.Kind != Scan, lo) * hi.Sub(lo).Seconds() / float64(ex.Sampling))
		for range n {
			r := Record{Exporter: c.exporter, Attack: ai, Flow: g.attackFlow(ai, a, g.when(lo, hi))}
			if a.Kind == FragmentFlood {
				r.FragmentOffset = 185 // 1480 bytes in: a trailing fragment of a 1500-byte packet
			}
			out = append(out, r)
		}
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// when draws a flow end time in [from, to).
func (g *Generator) when(from, to time.Time) time.Time {
	return from.Add(time.Duration(g.rng.Int64N(int64(to.Sub(from)))))
}

// poisson draws a Poisson count with the given mean (normal approximation
// above 30).
func (g *Generator) poisson(mean float64) int {
	switch {
	case mean <= 0:
		return 0
	case mean > 30:
		return max(0, int(math.Round(mean+g.rng.NormFloat64()*math.Sqrt(mean))))
	}
	l, k, p := math.Exp(-mean), 0, 1.0
	for {
		p *= g.rng.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// host returns the i-th active host of a subnet (from the 10th address).
func host(p netip.Prefix, i int) netip.Addr {
	return nthSubnet(p.Addr(), p.Addr().BitLen(), 10+i)
}

// ephemeral is a client's source port.
func (g *Generator) ephemeral() uint16 { return uint16(32768 + g.rng.IntN(28232)) }

// Packets per flow of unsampled background traffic: with 1:N sampling a
// record holds about that many sampled packets divided by N (at least 1).
const (
	hostingPacketsPerFlow = 12
	officePacketsPerFlow  = 40
)

// background appends sampled packets of one subnet and direction, grouped
// into records the way the exporter would: one record per sampled packet
// for sFlow, flows of several packets for NetFlow/IPFIX.
// A flash crowd passes its own clients and attack index.
func (g *Generator) background(out []Record, exi int, ex *Exporter, sn *Subnet, inbound bool, sampled int,
	from, to time.Time, crowd []netip.Addr, attack int) []Record {
	ppf := hostingPacketsPerFlow
	if sn.Profile == Office {
		ppf = officePacketsPerFlow
	}
	per := 1
	if ex.Protocol != SFlow {
		per = max(1, int(math.Round(float64(ppf)/float64(ex.Sampling))))
	}
	v6 := sn.prefix.Addr().Is6()
	for sampled > 0 {
		k := 1
		if per > 1 {
			k = 1 + g.rng.IntN(2*per-1)
		}
		k = min(k, sampled)
		sampled -= k
		f := g.conversation(sn, inbound, v6, k, crowd)
		end := g.when(from, to)
		f.End, f.Start = end, end.Add(-time.Duration(g.rng.Int64N(int64(2*time.Second))))
		out = append(out, Record{Exporter: exi, Attack: attack, Flow: f})
	}
	return out
}

// conversation builds one background flow record of k packets.
func (g *Generator) conversation(sn *Subnet, inbound, v6 bool, k int, crowd []netip.Addr) flowgen.Flow {
	clients, services := g.clients4, g.services4
	if v6 {
		clients, services = g.clients6, g.services6
	}
	local := host(sn.prefix, g.rng.IntN(sn.Hosts))
	var remote netip.Addr
	if crowd != nil {
		remote = crowd[g.rng.IntN(len(crowd))]
	} else if sn.Profile == Hosting {
		remote = clients[g.rng.IntN(len(clients))]
	} else {
		// Popular services get most of the traffic.
		x := g.rng.Float64()
		remote = services[int(x*x*x*float64(len(services)))]
	}
	f := flowgen.Flow{Packets: uint64(k), InIf: 1, OutIf: 2}
	if !inbound {
		f.InIf, f.OutIf = 2, 1
	}
	// service is the well-known port on the serving side; the client uses
	// an ephemeral port. Hosting: the customer serves; office: the
	// Internet serves.
	var proto uint8
	var service uint16
	switch r := g.rng.Float64(); {
	case r < 0.80:
		proto, service = 6, 443
		if g.rng.IntN(6) == 0 {
			service = 80
		}
	case r < 0.97:
		proto, service = 17, 443 // QUIC
		if g.rng.IntN(4) == 0 {
			service = 53
		}
	default:
		proto = 1
	}
	f.Proto = proto
	// Who sends this direction's packets: requests go client -> server.
	customerServes := sn.Profile == Hosting
	request := inbound == customerServes
	if inbound {
		f.Src, f.Dst = remote, local
	} else {
		f.Src, f.Dst = local, remote
	}
	if proto == 1 {
		if v6 {
			f.Proto = 58
			f.ICMPType = 128 // echo request
			if !request {
				f.ICMPType = 129
			}
		} else if !request {
			f.ICMPType = 0
		} else {
			f.ICMPType = 8
		}
		f.Bytes = uint64(k) * 84
		return f
	}
	eph := g.ephemeral()
	if request {
		f.SrcPort, f.DstPort = eph, service
	} else {
		f.SrcPort, f.DstPort = service, eph
	}
	size := 0
	if request {
		// Requests and ACKs: mostly small.
		switch r := g.rng.Float64(); {
		case r < 0.6:
			size = 52 + g.rng.IntN(24)
		case r < 0.9:
			size = 200 + g.rng.IntN(600)
		default:
			size = 1200 + g.rng.IntN(300)
		}
	} else {
		size = 1500
		if g.rng.Float64() < 0.25 {
			size = 52 + g.rng.IntN(24)
		}
	}
	if proto == 17 && service == 53 {
		size = 80 + g.rng.IntN(120)
		if !request {
			size += 100
		}
	}
	if v6 {
		size += 20
	}
	f.Bytes = uint64(k * size)
	if proto == 6 {
		switch {
		case k > 3:
			f.TCPFlags = 0x1b // SYN, ACK, PSH, FIN over the flow's life
		case request && k == 1 && g.rng.Float64() < 0.08:
			f.TCPFlags = 0x02 // a connection opening, sampled on its SYN
		case g.rng.Float64() < 0.5:
			f.TCPFlags = 0x18
		default:
			f.TCPFlags = 0x10
		}
	}
	return f
}

// attackFlow builds one sampled record of attack ai ending at end.
func (g *Generator) attackFlow(ai int, a *Attack, end time.Time) flowgen.Flow {
	src := g.attackers[ai][g.rng.IntN(len(g.attackers[ai]))]
	v6 := a.target.Addr().Is6()
	f := flowgen.Flow{Packets: 1, Start: end.Add(-time.Duration(g.rng.Int64N(int64(time.Second)))), End: end, InIf: 1, OutIf: 2}
	size := a.PacketSize
	switch a.Kind {
	case Volumetric:
		// GRE from many sources: no port, no class of its own.
		f.Src, f.Dst, f.Proto = src, a.target.Addr(), 47
		if size == 0 {
			size = 1400
		}
	case UDPFlood:
		f.Src, f.Dst, f.Proto = src, a.target.Addr(), 17
		f.SrcPort, f.DstPort = g.ephemeral(), uint16(1+g.rng.IntN(65535))
		if size == 0 {
			size = 512
		}
	case ICMPFlood:
		f.Src, f.Dst, f.Proto, f.ICMPType = src, a.target.Addr(), 1, 8
		if v6 {
			f.Proto, f.ICMPType = 58, 128
		}
		if size == 0 {
			size = 84
		}
	case FragmentFlood:
		// Trailing fragments carry no transport header: no ports.
		f.Src, f.Dst, f.Proto = src, a.target.Addr(), 17
		if size == 0 {
			size = 1500
		}
	case SYNFlood:
		f.Src, f.Dst, f.Proto, f.TCPFlags = src, a.target.Addr(), 6, 0x02
		f.SrcPort, f.DstPort = g.ephemeral(), a.Port
		if size == 0 {
			size = 60
		}
	case Amplification:
		f.Src, f.Dst, f.Proto = src, a.target.Addr(), 17
		f.SrcPort, f.DstPort = a.Port, g.ephemeral()
		if size == 0 {
			size = 468
		}
	case CarpetBombing:
		// Every address of the prefix gets a share, none stands out.
		f.Src, f.Dst, f.Proto = src, g.addrIn(a.target), 17
		f.SrcPort, f.DstPort = a.Port, g.ephemeral()
		if a.Port == 0 {
			f.SrcPort = g.ephemeral()
		}
		if size == 0 {
			size = 1200
		}
	case Scan:
		// One probe per fresh destination: a one-packet flow each.
		f.Src, f.Dst, f.Proto, f.TCPFlags = a.target.Addr(), g.publicAddr(v6), 6, 0x02
		f.SrcPort, f.DstPort = g.ephemeral(), a.Port
		f.InIf, f.OutIf = 2, 1
		if size == 0 {
			size = 60
		}
	}
	if v6 && a.PacketSize == 0 {
		size += 20
	}
	f.Bytes = uint64(size)
	return f
}

// addrIn draws an address of p (the network and broadcast addresses of
// small IPv4 prefixes included: carpet bombing does not care).
func (g *Generator) addrIn(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	host := p.Addr().BitLen() - p.Bits()
	for i := len(b) - 1; i >= 0 && host > 0; i-- {
		bits := min(host, 8)
		mask := byte(1<<bits - 1)
		b[i] = b[i]&^mask | byte(g.rng.IntN(256))&mask
		host -= bits
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}
