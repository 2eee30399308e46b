package window

import (
	"github.com/packetworks/flowsentry/detector/sketch"
)

// Features is what classification reads from one closed window of one
// target. Rates are per second over the whole window.
type Features struct {
	Start   int64 // ns
	Seconds int
	Values  Values // per-second rates and distinct counts, by Metric
	// Samples is the evidence behind each value: packets the exporter
	// actually saw (before scaling by its sampling rate) for the packet
	// and byte rates, records for flows and the distinct counts. Two
	// sampled packets at 1:1000 read as 200 pps but prove little.
	Samples Values

	// Shares of the window's packets, 0..1.
	TCPShare, UDPShare, ICMPShare, FragShare float64
	SynShareOfTCP                            float64
	PacketsPerFlow                           float64

	// Heaviest items' shares of packets.
	TopSrcShare, TopDstShare, TopSrcPortShare float64
	TopSrcPort                                uint32
	// The source with most flows: its share of flows and its packets per
	// flow (scanners: many flows of 1-2 packets).
	TopFlowSrcShare, TopFlowSrcPacketsPerFlow float64

	EntropySrc, EntropySrcPort, EntropyDstPort float64 // bits

	PeakBps, PeakPps         float64 // busiest 1-second bucket
	TotalBytes, TotalPackets float64
	LenMin, LenMax           [numProto]uint32
	agg                      *Agg // nil for an empty window
}

// Empty reports whether the window saw no flow.
func (f *Features) Empty() bool { return f.agg == nil }

// Agg is the underlying aggregate (nil for an empty window), valid until the
// window is recycled; fingerprints read its sketches.
func (f *Features) Agg() *Agg { return f.agg }

// Compute derives Features from a (nil for a window without traffic).
func Compute(a *Agg, start int64, seconds int) Features {
	ft := Features{Start: start, Seconds: seconds, agg: a}
	if a == nil {
		return ft
	}
	sec := float64(seconds)
	var bytes, packets, flows float64
	for i := 0; i < numProto; i++ {
		bytes += a.Bytes[i]
		packets += a.Packets[i]
		flows += a.FlowCount[i]
	}
	v := &ft.Values
	v[Bps] = bytes * 8 / sec
	v[Pps] = packets / sec
	v[Flows] = flows / sec
	v[PpsTCP] = a.Packets[TCP] / sec
	v[PpsUDP] = a.Packets[UDP] / sec
	v[PpsICMP] = a.Packets[ICMP] / sec
	v[PpsOther] = a.Packets[Other] / sec
	v[PpsSyn] = a.SynPackets / sec
	v[PpsFrag] = a.FragPackets / sec
	v[DistinctSrc] = a.Src.Estimate()
	v[DistinctDst] = a.Dst.Estimate()
	v[DistinctDstPorts] = a.DstPorts.Estimate()
	var seen float64
	for _, s := range a.Seen {
		seen += s
	}
	n := &ft.Samples
	n[Bps], n[Pps], n[Flows] = seen, seen, flows
	n[PpsTCP], n[PpsUDP], n[PpsICMP], n[PpsOther] = a.Seen[TCP], a.Seen[UDP], a.Seen[ICMP], a.Seen[Other]
	n[PpsSyn], n[PpsFrag] = a.SynSeen, a.FragSeen
	n[DistinctSrc], n[DistinctDst], n[DistinctDstPorts] = flows, flows, flows
	ft.TotalBytes, ft.TotalPackets = bytes, packets
	if packets > 0 {
		ft.TCPShare = a.Packets[TCP] / packets
		ft.UDPShare = a.Packets[UDP] / packets
		ft.ICMPShare = a.Packets[ICMP] / packets
		ft.FragShare = a.FragPackets / packets
		if it, ok := a.TopSrc.First(); ok {
			ft.TopSrcShare = min(1, it.Packets/packets)
		}
		if it, ok := a.TopDst.First(); ok {
			ft.TopDstShare = min(1, it.Packets/packets)
		}
		if it, ok := a.TopSrcPort.First(); ok {
			ft.TopSrcPortShare = min(1, it.Packets/packets)
			ft.TopSrcPort = it.Key
		}
	}
	if it, ok := a.TopSrcFlows.First(); ok && flows > 0 {
		ft.TopFlowSrcShare = min(1, it.Packets/flows)
		ft.TopFlowSrcPacketsPerFlow = it.Flows / it.Packets
	}
	if a.Packets[TCP] > 0 {
		ft.SynShareOfTCP = a.SynPackets / a.Packets[TCP]
	}
	if flows > 0 {
		ft.PacketsPerFlow = packets / flows
	}
	ft.EntropySrc = a.SrcEntropy.Bits()
	ft.EntropySrcPort = a.SrcPortEnt.Bits()
	ft.EntropyDstPort = a.DstPortEnt.Bits()
	for i := range a.SecBytes {
		ft.PeakBps = max(ft.PeakBps, a.SecBytes[i]*8)
		ft.PeakPps = max(ft.PeakPps, a.SecPackets[i])
	}
	ft.LenMin, ft.LenMax = a.LenMin, a.LenMax
	return ft
}

// TopSources etc. expose the sketches for fingerprints.
func (a *Agg) TopSources(n int) []sketch.Item[sketch.AddrKey]      { return a.TopSrc.Top(n) }
func (a *Agg) TopDestinations(n int) []sketch.Item[sketch.AddrKey] { return a.TopDst.Top(n) }
func (a *Agg) TopSrcPorts(n int) []sketch.Item[uint32]             { return a.TopSrcPort.Top(n) }
func (a *Agg) TopDstPorts(n int) []sketch.Item[uint32]             { return a.TopDstPort.Top(n) }
func (a *Agg) TopProtocols(n int) []sketch.Item[uint32]            { return a.TopProto.Top(n) }
