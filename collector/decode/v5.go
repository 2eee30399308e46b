package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/netflowlegacy"
)

const (
	v5Header = 24
	v5Record = 48
)

func (d *Decoder) decodeV5(pkt []byte) error {
	if len(pkt) < v5Header {
		return d.fail(ReasonShort, fmt.Errorf("netflow v5: %d bytes, header needs %d", len(pkt), v5Header))
	}
	// goflow2 allocates count records before reading them: check that the
	// datagram holds them first, so a forged count costs nothing.
	count := int(binary.BigEndian.Uint16(pkt[2:]))
	if have := (len(pkt) - v5Header) / v5Record; count > have {
		return d.fail(ReasonCount, fmt.Errorf("netflow v5: count %d but room for %d records", count, have))
	}
	d.buf = *bytesBuffer(pkt)
	if err := netflowlegacy.DecodeMessageVersion(&d.buf, &d.v5); err != nil {
		return d.fail(ReasonMalformed, err)
	}
	p := &d.v5
	hdr := header{version: 5, domain: uint32(p.EngineType)<<8 | uint32(p.EngineId),
		exportMs: int64(p.UnixSecs)*1000 + int64(p.UnixNSecs)/1e6, uptime: p.SysUptime,
		seq: p.FlowSequence, received: d.received}
	// Top 2 bits: sampling mode; low 14: interval. 0 means "not said".
	fallback := d.exp.fallbackRate(d.st.cfg)
	rate := fallback.apply(uint64(p.SamplingInterval & 0x3fff))
	for i, r := range p.Records {
		f := d.resetFlow()
		f.SrcAddr = binary.BigEndian.AppendUint32(d.src[:0], uint32(r.SrcAddr))
		f.DstAddr = binary.BigEndian.AppendUint32(d.dst[:0], uint32(r.DstAddr))
		f.NextHop = binary.BigEndian.AppendUint32(d.nh[:0], uint32(r.NextHop))
		f.Etype = 0x0800
		f.InIf, f.OutIf = uint32(r.Input), uint32(r.Output)
		f.Packets, f.Bytes = uint64(r.DPkts), uint64(r.DOctets)
		f.SrcPort, f.DstPort = uint32(r.SrcPort), uint32(r.DstPort)
		f.TcpFlags, f.Proto, f.IpTos = uint32(r.TCPFlags), uint32(r.Proto), uint32(r.Tos)
		f.SrcAs, f.DstAs = uint32(r.SrcAS), uint32(r.DstAS)
		f.SrcNet, f.DstNet = uint32(r.SrcMask), uint32(r.DstMask)
		if f.Proto == 1 {
			f.IcmpType, f.IcmpCode = f.DstPort>>8, f.DstPort&0xff
		}
		tm := times{firstUp: r.First, lastUp: r.Last, has: hasFirstUp | hasLastUp}
		d.emit(f, &hdr, &tm, 0, rate, i == 0)
	}
	return nil
}
