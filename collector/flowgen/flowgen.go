// Package flowgen builds NetFlow v5, NetFlow v9, IPFIX and sFlow v5
// datagrams from a list of flows. Tests, fuzz seeds, golden files, the demo
// and the benchmarks use it so that every one of them speaks the same wire
// format as a real exporter without needing one.
package flowgen

import (
	"encoding/binary"
	"net/netip"
	"time"
)

// Flow is one flow to encode. Bytes and Packets are what the exporter
// counted (before any sampling-rate scaling).
type Flow struct {
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	TCPFlags         uint8
	Tos              uint8
	Bytes, Packets   uint64
	Start, End       time.Time
	InIf, OutIf      uint32
	SrcAS, DstAS     uint32
	NextHop          netip.Addr
	SrcMask, DstMask uint8
	ICMPType         uint8
	ICMPCode         uint8
}

// Is6 reports whether the flow carries IPv6 addresses.
func (f Flow) Is6() bool { return f.Src.Is6() && !f.Src.Is4In6() }

var be = binary.BigEndian

func put16(b []byte, v uint16) []byte { return be.AppendUint16(b, v) }
func put32(b []byte, v uint32) []byte { return be.AppendUint32(b, v) }
func put64(b []byte, v uint64) []byte { return be.AppendUint64(b, v) }

func addr4(a netip.Addr) []byte {
	if !a.IsValid() {
		return make([]byte, 4)
	}
	b := a.Unmap().As4()
	return b[:]
}

func addr16(a netip.Addr) []byte {
	if !a.IsValid() {
		return make([]byte, 16)
	}
	b := a.As16()
	return b[:]
}

// uptimeMs is t as milliseconds of system uptime for an exporter that
// booted at boot (wrapping like a 32-bit counter does).
func uptimeMs(boot, t time.Time) uint32 {
	return uint32(t.Sub(boot).Milliseconds())
}

// V5Header is the NetFlow v5 header data.
type V5Header struct {
	Export       time.Time // unix_secs/unix_nsecs
	Boot         time.Time // sys_uptime = Export - Boot
	Seq          uint32
	EngineType   uint8
	EngineID     uint8
	SamplingRate uint16 // 14 bits; mode 01 (deterministic) is set when > 0
}

// NetFlowV5 encodes up to 30 IPv4 flows into one v5 datagram (flows beyond
// 30 or IPv6 flows are the caller's mistake and are skipped).
func NetFlowV5(h V5Header, flows []Flow) []byte {
	var recs []Flow
	for _, f := range flows {
		if !f.Is6() && len(recs) < 30 {
			recs = append(recs, f)
		}
	}
	b := make([]byte, 0, 24+48*len(recs))
	b = put16(b, 5)
	b = put16(b, uint16(len(recs)))
	b = put32(b, uptimeMs(h.Boot, h.Export))
	b = put32(b, uint32(h.Export.Unix()))
	b = put32(b, uint32(h.Export.Nanosecond()))
	b = put32(b, h.Seq)
	b = append(b, h.EngineType, h.EngineID)
	si := h.SamplingRate & 0x3fff
	if si > 0 {
		si |= 1 << 14
	}
	b = put16(b, si)
	for _, f := range recs {
		b = append(b, addr4(f.Src)...)
		b = append(b, addr4(f.Dst)...)
		b = append(b, addr4(f.NextHop)...)
		b = put16(b, uint16(f.InIf))
		b = put16(b, uint16(f.OutIf))
		b = put32(b, uint32(f.Packets))
		b = put32(b, uint32(f.Bytes))
		b = put32(b, uptimeMs(h.Boot, f.Start))
		b = put32(b, uptimeMs(h.Boot, f.End))
		sp, dp := f.SrcPort, f.DstPort
		if f.Proto == 1 {
			sp, dp = 0, uint16(f.ICMPType)<<8|uint16(f.ICMPCode)
		}
		b = put16(b, sp)
		b = put16(b, dp)
		b = append(b, 0, f.TCPFlags, f.Proto, f.Tos)
		b = put16(b, uint16(f.SrcAS))
		b = put16(b, uint16(f.DstAS))
		b = append(b, f.SrcMask, f.DstMask, 0, 0)
	}
	return b
}
