package window

import (
	"github.com/packetworks/flowsentry/detector/sketch"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// Protocol classes the counters split by.
const (
	TCP = iota
	UDP
	ICMP
	Other
	numProto
)

// ProtoClass maps an IP protocol number to a counter class.
func ProtoClass(proto uint32) int {
	switch proto {
	case 6:
		return TCP
	case 17:
		return UDP
	case 1, 58:
		return ICMP
	}
	return Other
}

const (
	tcpSYN = 0x02
	tcpACK = 0x10
	ipMF   = 0x01 // "more fragments" in goflow2's ip_flags
)

// TopK sizes: space-saving with k counters finds every item above 1/k of
// the window's packets; fingerprints show the first five.
const (
	topKAddrs = 12
	topKPorts = 12
	topKProto = 6
)

// Agg is one target's (subnet key + direction) aggregate for one window.
// About 4 KiB; only targets with traffic in an open window hold one, and
// they are recycled through a free list.
type Agg struct {
	Start   int64 // window start, ns
	seconds int

	Bytes, Packets, FlowCount [numProto]float64
	SynPackets, FragPackets   float64
	// Packets as the exporter sampled them, before scaling by the
	// sampling rate: the evidence behind each rate (see Features.Samples).
	Seen              [numProto]float64
	SynSeen, FragSeen float64

	// 1-second buckets for the peak rates an event reports.
	SecBytes, SecPackets []float64

	Src, Dst, DstPorts                 sketch.HLL
	SrcEntropy, SrcPortEnt, DstPortEnt sketch.Entropy

	TopSrc, TopDst *sketch.TopK[sketch.AddrKey]
	// TopSrcFlows ranks sources by flow count: a scanner sends many tiny
	// flows and never ranks by packets on a sampled link.
	TopSrcFlows            *sketch.TopK[sketch.AddrKey]
	TopSrcPort, TopDstPort *sketch.TopK[uint32]
	TopProto               *sketch.TopK[uint32]

	// Packet length range per protocol class (0 = unknown), for mitigation.
	LenMin, LenMax [numProto]uint32
}

// NewAgg returns an empty aggregate for windows of seconds seconds.
func NewAgg(seconds int) *Agg {
	return &Agg{seconds: seconds, SecBytes: make([]float64, seconds), SecPackets: make([]float64, seconds),
		TopSrc: sketch.NewTopK[sketch.AddrKey](topKAddrs), TopDst: sketch.NewTopK[sketch.AddrKey](topKAddrs),
		TopSrcFlows: sketch.NewTopK[sketch.AddrKey](topKAddrs),
		TopSrcPort:  sketch.NewTopK[uint32](topKPorts), TopDstPort: sketch.NewTopK[uint32](topKPorts),
		TopProto: sketch.NewTopK[uint32](topKProto)}
}

// Reset empties a for reuse at window start.
func (a *Agg) Reset(start int64) {
	a.Start = start
	a.Bytes, a.Packets, a.FlowCount = [numProto]float64{}, [numProto]float64{}, [numProto]float64{}
	a.SynPackets, a.FragPackets = 0, 0
	a.Seen, a.SynSeen, a.FragSeen = [numProto]float64{}, 0, 0
	clear(a.SecBytes)
	clear(a.SecPackets)
	a.Src.Reset()
	a.Dst.Reset()
	a.DstPorts.Reset()
	a.SrcEntropy.Reset()
	a.SrcPortEnt.Reset()
	a.DstPortEnt.Reset()
	a.TopSrc.Reset()
	a.TopDst.Reset()
	a.TopSrcFlows.Reset()
	a.TopSrcPort.Reset()
	a.TopDstPort.Reset()
	a.TopProto.Reset()
	a.LenMin, a.LenMax = [numProto]uint32{}, [numProto]uint32{}
}

// Fold adds flow f, whose event time falls sec seconds into the window.
func (a *Agg) Fold(f *pb.Flow, sec int) {
	packets := float64(f.GetPackets())
	bytes := float64(f.GetBytes())
	if packets == 0 {
		// A flow record stands for at least one packet; some exporters
		// send 0 for sampled records.
		packets = 1
	}
	// The packets the exporter saw: a sampled record of one packet at
	// 1:1000 carries 1000 packets but is one packet of evidence.
	seen := packets
	if r := f.GetSamplingRate(); f.GetSamplingApplied() && r > 1 {
		seen = max(1, packets/float64(r))
	}
	pc := ProtoClass(f.GetProto())
	a.Bytes[pc] += bytes
	a.Packets[pc] += packets
	a.FlowCount[pc]++
	a.Seen[pc] += seen
	if pc == TCP && f.GetTcpFlags()&tcpSYN != 0 && f.GetTcpFlags()&tcpACK == 0 {
		a.SynPackets += packets
		a.SynSeen += seen
	}
	if f.GetFragmentOffset() > 0 || f.GetIpFlags()&ipMF != 0 {
		a.FragPackets += packets
		a.FragSeen += seen
	}
	if sec < 0 {
		sec = 0
	} else if sec >= a.seconds {
		sec = a.seconds - 1
	}
	a.SecBytes[sec] += bytes
	a.SecPackets[sec] += packets

	hs := sketch.HashAddr(f.GetSrcAddr())
	hd := sketch.HashAddr(f.GetDstAddr())
	hsp := sketch.HashPort(f.GetSrcPort(), 1)
	hdp := sketch.HashPort(f.GetDstPort()|f.GetProto()<<16, 2)
	a.Src.Add(hs)
	a.Dst.Add(hd)
	a.DstPorts.Add(hdp)
	a.SrcEntropy.Add(hs, packets)
	a.SrcPortEnt.Add(hsp, packets)
	a.DstPortEnt.Add(hdp, packets)

	src, dst := sketch.KeyOf(f.GetSrcAddr()), sketch.KeyOf(f.GetDstAddr())
	a.TopSrc.Add(src, packets, bytes, 1)
	a.TopDst.Add(dst, packets, bytes, 1)
	// Ranked by flows: Packets holds flows, Flows holds packets as the
	// exporter saw them, before sampling scaled them up: a scan probe is one
	// or two packets per record whatever the router's sampling rate.
	a.TopSrcFlows.Add(src, 1, bytes, seen)
	if pc == TCP || pc == UDP {
		a.TopSrcPort.Add(f.GetSrcPort(), packets, bytes, 1)
		a.TopDstPort.Add(f.GetDstPort(), packets, bytes, 1)
	}
	a.TopProto.Add(f.GetProto(), packets, bytes, 1)

	lo, hi := f.GetMinPacketLength(), f.GetMaxPacketLength()
	if lo == 0 || hi == 0 {
		avg := uint32(bytes / packets)
		lo, hi = avg, avg
	}
	if lo > 0 && (a.LenMin[pc] == 0 || lo < a.LenMin[pc]) {
		a.LenMin[pc] = lo
	}
	if hi > a.LenMax[pc] {
		a.LenMax[pc] = hi
	}
}
