package flowgen

import (
	"net/netip"
	"time"
)

// SFlowHeader is the sFlow v5 datagram header data.
type SFlowHeader struct {
	Agent      netip.Addr
	SubAgentID uint32
	Seq        uint32
	Uptime     time.Duration
	// SamplingRate is written in every flow sample (1-in-N).
	SamplingRate uint32
	// Expanded writes expanded flow samples (format 3) instead of format 1.
	Expanded bool
	// Counters adds one generic interface counter sample.
	Counters bool
}

// SFlow encodes one flow sample per flow. Each sample stands for one
// sampled packet: its frame length is f.Bytes/f.Packets (f.Bytes when
// Packets is 0) and its header is an Ethernet/IP/L4 header built from f.
func SFlow(h SFlowHeader, flows []Flow) []byte {
	b := make([]byte, 0, 64+len(flows)*160)
	b = put32(b, 5)
	if h.Agent.Is6() && !h.Agent.Is4In6() {
		b = put32(b, 2)
		b = append(b, addr16(h.Agent)...)
	} else {
		b = put32(b, 1)
		b = append(b, addr4(h.Agent)...)
	}
	b = put32(b, h.SubAgentID)
	b = put32(b, h.Seq)
	b = put32(b, uint32(h.Uptime.Milliseconds()))
	n := len(flows)
	if h.Counters {
		n++
	}
	b = put32(b, uint32(n))
	for i, f := range flows {
		frame := f.Bytes
		if f.Packets > 0 {
			frame = f.Bytes / f.Packets
		}
		hdr := PacketHeader(f, uint16(frame))
		var recs []byte
		// Raw packet header record.
		recs = put32(recs, 1)
		body := put32(nil, 1) // header protocol: ethernet
		body = put32(body, uint32(frame))
		body = put32(body, 4) // stripped FCS
		body = put32(body, uint32(len(hdr)))
		body = append(body, hdr...)
		for len(body)%4 != 0 {
			body = append(body, 0)
		}
		recs = put32(recs, uint32(len(body)))
		recs = append(recs, body...)
		// Extended router record: next hop and masks.
		recs = put32(recs, 1002)
		if f.NextHop.Is6() && !f.NextHop.Is4In6() {
			body = put32(nil, 2)
			body = append(body, addr16(f.NextHop)...)
		} else {
			body = put32(nil, 1)
			body = append(body, addr4(f.NextHop)...)
		}
		body = put32(body, uint32(f.SrcMask))
		body = put32(body, uint32(f.DstMask))
		recs = put32(recs, uint32(len(body)))
		recs = append(recs, body...)

		var s []byte
		s = put32(s, h.Seq*1000+uint32(i))
		if h.Expanded {
			s = put32(s, 0) // source id type
			s = put32(s, f.InIf)
			s = put32(s, h.SamplingRate)
			s = put32(s, h.SamplingRate*uint32(i+1)) // sample pool
			s = put32(s, 0)                          // drops
			s = put32(s, 0)
			s = put32(s, f.InIf)
			s = put32(s, 0)
			s = put32(s, f.OutIf)
		} else {
			s = put32(s, f.InIf&0xffffff)
			s = put32(s, h.SamplingRate)
			s = put32(s, h.SamplingRate*uint32(i+1))
			s = put32(s, 0)
			s = put32(s, f.InIf&0x3fffffff)
			s = put32(s, f.OutIf&0x3fffffff)
		}
		s = put32(s, 2) // records
		s = append(s, recs...)
		if h.Expanded {
			b = put32(b, 3)
		} else {
			b = put32(b, 1)
		}
		b = put32(b, uint32(len(s)))
		b = append(b, s...)
	}
	if h.Counters {
		var s []byte
		s = put32(s, h.Seq)
		s = put32(s, 1) // source id
		s = put32(s, 1) // one record
		s = put32(s, 1) // generic interface counters
		s = put32(s, 88)
		s = append(s, make([]byte, 88)...)
		b = put32(b, 2)
		b = put32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}

// PacketHeader builds the first bytes of a frame for f: Ethernet, IPv4 or
// IPv6, then TCP, UDP or ICMP. frame is the frame length on the wire.
func PacketHeader(f Flow, frame uint16) []byte {
	b := []byte{0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01}
	ipLen := frame - 14
	if frame < 14 {
		ipLen = 0
	}
	if f.Is6() {
		b = put16(b, 0x86dd)
		b = put32(b, 6<<28|uint32(f.Tos)<<20)
		b = put16(b, ipLen-40)
		b = append(b, f.Proto, 64)
		b = append(b, addr16(f.Src)...)
		b = append(b, addr16(f.Dst)...)
	} else {
		b = put16(b, 0x0800)
		b = append(b, 0x45, f.Tos)
		b = put16(b, ipLen)
		b = put32(b, 0) // id, flags, fragment offset
		b = append(b, 64, f.Proto, 0, 0)
		b = append(b, addr4(f.Src)...)
		b = append(b, addr4(f.Dst)...)
	}
	switch f.Proto {
	case 6:
		b = put16(b, f.SrcPort)
		b = put16(b, f.DstPort)
		b = put32(b, 1)
		b = put32(b, 0)
		b = append(b, 0x50, f.TCPFlags)
		b = put16(b, 65535)
		b = put32(b, 0)
	case 17:
		b = put16(b, f.SrcPort)
		b = put16(b, f.DstPort)
		b = put16(b, ipLen-20)
		b = put16(b, 0)
	case 1, 58:
		b = append(b, f.ICMPType, f.ICMPCode, 0, 0, 0, 0, 0, 0)
	}
	return b
}
