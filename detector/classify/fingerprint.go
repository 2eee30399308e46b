package classify

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/packetworks/flowsentry/detector/sketch"
	"github.com/packetworks/flowsentry/detector/window"
	"github.com/packetworks/flowsentry/schemas/pb"
)

const fingerprintTop = 5

// ProtoName names an IP protocol the way fingerprints show it.
func ProtoName(p uint32) string {
	switch p {
	case 1:
		return "icmp"
	case 6:
		return "tcp"
	case 17:
		return "udp"
	case 47:
		return "gre"
	case 50:
		return "esp"
	case 58:
		return "ipv6-icmp"
	}
	return strconv.FormatUint(uint64(p), 10)
}

func items[K comparable](in []sketch.Item[K], total float64, name func(K) string) []*pb.TopItem {
	out := make([]*pb.TopItem, 0, len(in))
	for _, it := range in {
		share := 0.0
		if total > 0 {
			share = min(1, it.Packets/total)
		}
		out = append(out, &pb.TopItem{Key: name(it.Key), Bytes: uint64(it.Bytes), Packets: uint64(it.Packets),
			Flows: uint64(it.Flows), Share: share})
	}
	return out
}

func addrName(k sketch.AddrKey) string {
	a := k.Addr()
	if !a.IsValid() {
		return "unknown"
	}
	return a.String()
}

func portName(p uint32) string { return strconv.FormatUint(uint64(p), 10) }

// Fingerprint describes the window's traffic for an anomaly of class: top
// items, distinct counts and a suggested FlowSpec-like mitigation. nil for
// a window without traffic.
func (c *Classifier) Fingerprint(in *Input, class string) *pb.Fingerprint {
	a := in.F.Agg()
	if a == nil {
		return nil
	}
	total := in.F.TotalPackets
	fp := &pb.Fingerprint{
		TopSources:           items(a.TopSources(fingerprintTop), total, addrName),
		TopSrcPorts:          items(a.TopSrcPorts(fingerprintTop), total, portName),
		TopDstPorts:          items(a.TopDstPorts(fingerprintTop), total, portName),
		TopProtocols:         items(a.TopProtocols(fingerprintTop), total, ProtoName),
		TopDestinations:      items(a.TopDestinations(fingerprintTop), total, addrName),
		DistinctSources:      uint64(in.F.Values[window.DistinctSrc] + 0.5),
		DistinctDestinations: uint64(in.F.Values[window.DistinctDst] + 0.5),
	}
	if class == Scan {
		// A scanner sends many tiny flows: rank sources by flows.
		fp.TopSources = nil
		for _, it := range a.TopSrcFlows.Top(fingerprintTop) {
			share := 0.0
			if flows := in.F.Values[window.Flows] * float64(in.F.Seconds); flows > 0 {
				share = min(1, it.Packets/flows)
			}
			fp.TopSources = append(fp.TopSources, &pb.TopItem{Key: addrName(it.Key), Bytes: uint64(it.Bytes),
				Packets: uint64(it.Flows), Flows: uint64(it.Packets), Share: share})
		}
	}
	switch {
	case class == Scan && in.Direction == pb.Direction_DIRECTION_OUTBOUND:
		// A customer host scanning the Internet: the ISP can stop it at
		// its own edge. An inbound scanner is only reported.
		fp.Mitigation = c.scanMitigation(in, a)
	case class != TrafficDrop && class != Scan:
		fp.Mitigation = c.mitigation(in, class, a)
	}
	return fp
}

// hostPrefix is the /32 or /128 of a top item taking at least share of the
// window's packets (for TopSrcFlows, "packets" are flows and total is the
// flow count), else "".
func hostPrefix(t *sketch.TopK[sketch.AddrKey], total, share float64) string {
	top, ok := t.First()
	if !ok || total <= 0 || top.Packets/total < share || !top.Key.Addr().IsValid() {
		return ""
	}
	return netip.PrefixFrom(top.Key.Addr(), top.Key.Addr().BitLen()).String()
}

// scanMitigation filters an outbound scan at its source: the scanning host
// (the source with most flows) and, judged by flows since probes are tiny
// next to normal traffic, the protocol and scanned ports when they dominate
// (a worm scanning 23/tcp). Top-K counters rank by packets, so a scanned
// port may be missing: the rule then matches the host's protocol only,
// broader but still the right host. Discard: a scan is abuse to stop, not
// customer traffic to keep.
func (c *Classifier) scanMitigation(in *Input, a *window.Agg) *pb.Mitigation {
	flows := in.F.Values[window.Flows] * float64(in.F.Seconds)
	m := &pb.Mitigation{Action: "discard", SrcPrefix: hostPrefix(a.TopSrcFlows, flows, c.cfg.ScanMinTopSourceShare)}
	if m.SrcPrefix == "" {
		m.SrcPrefix = in.Subnet
	}
	var top sketch.Item[uint32]
	for _, it := range a.TopProto.Top(-1) {
		if it.Flows > top.Flows {
			top = it
		}
	}
	if flows > 0 && top.Flows/flows >= 0.8 {
		m.Protocols = []uint32{top.Key}
		if top.Key == 6 || top.Key == 17 {
			for _, it := range a.TopDstPort.Top(-1) {
				if it.Flows/flows >= 0.3 {
					m.DstPorts = append(m.DstPorts, it.Key)
				}
			}
		}
	}
	m.Description = describe(m, Scan)
	return m
}

func (c *Classifier) mitigation(in *Input, class string, a *window.Agg) *pb.Mitigation {
	f := in.F
	m := &pb.Mitigation{Action: "discard"}
	total := f.TotalPackets
	// Destination: the attacked host when one takes most of the traffic,
	// else the whole subnet (always for carpet bombing).
	m.DstPrefix = in.Subnet
	if top, ok := a.TopDst.First(); ok && class != CarpetBombing && total > 0 && top.Packets/total >= 0.5 && top.Key.Addr().IsValid() {
		m.DstPrefix = netip.PrefixFrom(top.Key.Addr(), top.Key.Addr().BitLen()).String()
	}
	if in.Direction == pb.Direction_DIRECTION_OUTBOUND {
		// The customer's side is the source: its host when one sends
		// most of the traffic (a compromised host in a botnet), else the
		// subnet; the destination only when one victim takes most.
		m.DstPrefix = hostPrefix(a.TopDst, total, 0.5)
		m.SrcPrefix = hostPrefix(a.TopSrc, total, 0.5)
		if m.SrcPrefix == "" {
			m.SrcPrefix = in.Subnet
		}
	}
	pc := -1
	switch class {
	case SynFlood:
		m.Protocols, m.TcpFlags, pc = []uint32{6}, "syn&!ack", window.TCP
		m.DstPorts = heavyPorts(a.TopDstPorts(3), total, 0.2)
	case UDPFlood:
		m.Protocols, pc = []uint32{17}, window.UDP
		m.DstPorts = heavyPorts(a.TopDstPorts(3), total, 0.3)
	case Amplification:
		m.Protocols, pc = []uint32{17}, window.UDP
		for _, it := range a.TopSrcPorts(fingerprintTop) {
			if slices.Contains(c.cfg.AmpPorts, it.Key) && total > 0 && it.Packets/total >= 0.05 {
				m.SrcPorts = append(m.SrcPorts, it.Key)
			}
		}
	case ICMPFlood:
		pc = window.ICMP
		m.Protocols = []uint32{1}
		if p, err := netip.ParsePrefix(in.Subnet); err == nil && p.Addr().Is6() {
			m.Protocols = []uint32{58}
		}
	default:
		// Volumetric, carpet bombing, fragments: name the protocol only
		// when one dominates; rate-limit rather than drop all traffic.
		if top, ok := a.TopProto.First(); ok && total > 0 && top.Packets/total >= 0.8 {
			m.Protocols = []uint32{top.Key}
			pc = window.ProtoClass(top.Key)
		}
		if class != FragmentFlood {
			m.Action = fmt.Sprintf("rate-limit %.0f", max(2*in.Exp[window.Bps].Expected, 1e6))
		}
	}
	if pc >= 0 && f.LenMin[pc] > 0 {
		m.PacketLengthMin, m.PacketLengthMax = f.LenMin[pc], f.LenMax[pc]
	}
	m.Description = describe(m, class)
	return m
}

func heavyPorts(in []sketch.Item[uint32], total, share float64) []uint32 {
	var out []uint32
	for _, it := range in {
		if total > 0 && it.Packets/total >= share {
			out = append(out, it.Key)
		}
	}
	return out
}

func describe(m *pb.Mitigation, class string) string {
	var b strings.Builder
	b.WriteString("match")
	if m.SrcPrefix != "" {
		b.WriteString(" src " + m.SrcPrefix)
	}
	if m.DstPrefix != "" {
		b.WriteString(" dst " + m.DstPrefix)
	}
	list := func(name string, v []uint32, f func(uint32) string) {
		if len(v) == 0 {
			return
		}
		s := make([]string, len(v))
		for i, x := range v {
			s[i] = f(x)
		}
		b.WriteString(" " + name + " " + strings.Join(s, ","))
	}
	list("proto", m.Protocols, ProtoName)
	list("src-port", m.SrcPorts, portName)
	list("dst-port", m.DstPorts, portName)
	if m.TcpFlags != "" {
		b.WriteString(" tcp-flags " + m.TcpFlags)
	}
	if class == FragmentFlood {
		b.WriteString(" fragment is-fragment")
	}
	if m.PacketLengthMax > 0 {
		fmt.Fprintf(&b, " packet-length %d-%d", m.PacketLengthMin, m.PacketLengthMax)
	}
	b.WriteString(" then " + m.Action)
	return b.String()
}
