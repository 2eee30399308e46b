package decode

import (
	"encoding/binary"
	"fmt"

	"github.com/netsampler/goflow2/v2/decoders/sflow"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// maxSFlowRecords is goflow2's own bound for flow samples, which it does
// not apply to expanded flow samples (format 3): there a forged count of
// 2^32-1 would make it allocate ~170 GB. We check before calling it.
const maxSFlowRecords = 1000

// checkSFlow walks the datagram's sample headers without decoding them.
func checkSFlow(pkt []byte) error {
	if len(pkt) < 28 {
		return fmt.Errorf("sflow: %d bytes", len(pkt))
	}
	pos := 8
	switch binary.BigEndian.Uint32(pkt[4:]) {
	case 1:
		pos += 4
	case 2:
		pos += 16
	default:
		return nil // goflow2 rejects it with a clear error
	}
	if pos+16 > len(pkt) {
		return fmt.Errorf("sflow: header truncated")
	}
	n := binary.BigEndian.Uint32(pkt[pos+12:])
	pos += 16
	if n > maxSFlowRecords {
		return fmt.Errorf("sflow: %d samples", n)
	}
	for i := uint32(0); i < n && pos+8 <= len(pkt); i++ {
		format := binary.BigEndian.Uint32(pkt[pos:])
		length := int(binary.BigEndian.Uint32(pkt[pos+4:]))
		pos += 8
		if length > len(pkt)-pos || length < 0 {
			return fmt.Errorf("sflow: sample %d of %d bytes, %d left", i, length, len(pkt)-pos)
		}
		if format == sflow.SAMPLE_FORMAT_EXPANDED_FLOW && length >= 44 {
			if c := binary.BigEndian.Uint32(pkt[pos+40:]); c > maxSFlowRecords || int(c) > length/8 {
				return fmt.Errorf("sflow: expanded flow sample claims %d records in %d bytes", c, length)
			}
		}
		pos += length
	}
	return nil
}

func (d *Decoder) decodeSFlow(pkt []byte) error {
	if err := checkSFlow(pkt); err != nil {
		return d.fail(ReasonCount, err)
	}
	d.buf = *bytesBuffer(pkt)
	d.sf.Samples = nil
	if err := sflow.DecodeMessageVersion(&d.buf, &d.sf); err != nil {
		return d.fail(ReasonMalformed, err)
	}
	hdr := header{domain: d.sf.SubAgentId, seq: d.sf.SequenceNumber, received: d.received}
	fallback := d.exp.fallbackRate(d.st.cfg)
	first := true
	for _, s := range d.sf.Samples {
		switch s := s.(type) {
		case sflow.FlowSample:
			d.sflowSample(&hdr, fallback.apply(uint64(s.SamplingRate)), ifIndex(s.Input), ifIndex(s.Output), s.Records, first)
			first = false
		case sflow.ExpandedFlowSample:
			d.sflowSample(&hdr, fallback.apply(uint64(s.SamplingRate)), s.InputIfValue, s.OutputIfValue, s.Records, first)
			first = false
		}
	}
	return nil
}

// ifIndex reads a compact sFlow interface: 2 bits of format, 30 of value.
// Formats other than 0 (a single ifIndex) say "discarded" or "several".
func ifIndex(v uint32) uint32 {
	if v>>30 != 0 {
		return 0
	}
	return v & 0x3fffffff
}

func (d *Decoder) sflowSample(hdr *header, rate uint64, in, out uint32, recs []sflow.FlowRecord, first bool) {
	f := d.resetFlow()
	f.InIf, f.OutIf = in, out
	f.Packets = 1
	var fromHeader bool
	for _, r := range recs {
		switch r := r.Data.(type) {
		case sflow.SampledHeader:
			f.Bytes = uint64(r.FrameLength)
			f.MinPacketLength, f.MaxPacketLength = r.FrameLength, r.FrameLength
			fromHeader = d.parseHeader(f, r.Protocol, r.HeaderData)
		case sflow.SampledIPv4:
			if !fromHeader {
				d.sampledIP(f, &r.SampledIPBase, 0x0800)
				f.IpTos = r.Tos
			}
		case sflow.SampledIPv6:
			if !fromHeader {
				d.sampledIP(f, &r.SampledIPBase, 0x86dd)
			}
		case sflow.ExtendedSwitch:
			f.SrcVlan, f.DstVlan = r.SrcVlan, r.DstVlan
		case sflow.ExtendedRouter:
			if len(r.NextHop) == 4 || len(r.NextHop) == 16 {
				f.NextHop = append(d.nh[:0], r.NextHop...)
			}
			f.SrcNet, f.DstNet = r.SrcMaskLen, r.DstMaskLen
		case sflow.ExtendedGateway:
			f.SrcAs, f.DstAs = r.SrcAS, r.AS
			if n := len(r.ASPath); n > 0 {
				f.DstAs = r.ASPath[n-1]
			}
			if len(f.NextHop) == 0 && (len(r.NextHop) == 4 || len(r.NextHop) == 16) {
				f.NextHop = append(d.nh[:0], r.NextHop...)
			}
		}
	}
	f.Type = pb.Flow_SFLOW_5
	// sFlow has no flow times: a sample is one packet seen now.
	tm := times{}
	h := *hdr
	h.version = 0
	d.emit(f, &h, &tm, 0, rate, first)
}

func (d *Decoder) sampledIP(f *pb.Flow, r *sflow.SampledIPBase, etype uint32) {
	if len(r.SrcIP) != len(r.DstIP) || (len(r.SrcIP) != 4 && len(r.SrcIP) != 16) {
		return
	}
	f.Etype = etype
	f.SrcAddr = append(d.src[:0], r.SrcIP...)
	f.DstAddr = append(d.dst[:0], r.DstIP...)
	f.Proto, f.SrcPort, f.DstPort, f.TcpFlags = r.Protocol, r.SrcPort, r.DstPort, r.TcpFlags&0xff
	if f.Bytes == 0 {
		f.Bytes = uint64(r.Length)
		f.MinPacketLength, f.MaxPacketLength = r.Length, r.Length
	}
}
