package decode

import (
	"encoding/binary"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// sFlow header_protocol values (sFlow v5 "header_protocol").
const (
	sflowEthernet = 1
	sflowIPv4     = 11
	sflowIPv6     = 12
)

// parseHeader reads a sampled packet header (Ethernet, VLAN tags, MPLS,
// IPv4/IPv6, TCP/UDP/ICMP) into f. It reports whether it found an IP
// header. Truncated headers fill what they can.
func (d *Decoder) parseHeader(f *pb.Flow, proto uint32, b []byte) bool {
	var etype uint16
	switch proto {
	case sflowEthernet:
		if len(b) < 14 {
			return false
		}
		f.DstMac = uint64(binary.BigEndian.Uint16(b[0:]))<<32 | uint64(binary.BigEndian.Uint32(b[2:]))
		f.SrcMac = uint64(binary.BigEndian.Uint16(b[6:]))<<32 | uint64(binary.BigEndian.Uint32(b[8:]))
		etype = binary.BigEndian.Uint16(b[12:])
		b = b[14:]
		for (etype == 0x8100 || etype == 0x88a8) && len(b) >= 4 {
			if f.SrcVlan == 0 {
				f.SrcVlan = uint32(binary.BigEndian.Uint16(b) & 0x0fff)
			}
			etype = binary.BigEndian.Uint16(b[2:])
			b = b[4:]
		}
		if etype == 0x8847 { // MPLS: skip labels, guess IP from the nibble
			for len(b) >= 4 {
				bottom := b[2]&1 == 1
				b = b[4:]
				if bottom {
					break
				}
			}
			if len(b) > 0 {
				switch b[0] >> 4 {
				case 4:
					etype = 0x0800
				case 6:
					etype = 0x86dd
				}
			}
		}
	case sflowIPv4:
		etype = 0x0800
	case sflowIPv6:
		etype = 0x86dd
	default:
		return false
	}
	var l4 []byte
	var next uint8
	switch etype {
	case 0x0800:
		if len(b) < 20 || b[0]>>4 != 4 {
			return false
		}
		ihl := int(b[0]&0x0f) * 4
		f.Etype = 0x0800
		f.IpTos = uint32(b[1])
		f.FragmentId = uint32(binary.BigEndian.Uint16(b[4:]))
		ff := binary.BigEndian.Uint16(b[6:])
		f.IpFlags, f.FragmentOffset = uint32(ff>>13), uint32(ff&0x1fff)
		f.IpTtl = uint32(b[8])
		next = b[9]
		f.SrcAddr = append(d.src[:0], b[12:16]...)
		f.DstAddr = append(d.dst[:0], b[16:20]...)
		if ihl >= 20 && len(b) >= ihl && f.FragmentOffset == 0 {
			l4 = b[ihl:]
		}
	case 0x86dd:
		if len(b) < 40 || b[0]>>4 != 6 {
			return false
		}
		v := binary.BigEndian.Uint32(b)
		f.Etype = 0x86dd
		f.IpTos = v >> 20 & 0xff
		f.Ipv6FlowLabel = v & 0xfffff
		next = b[6]
		f.IpTtl = uint32(b[7])
		f.SrcAddr = append(d.src[:0], b[8:24]...)
		f.DstAddr = append(d.dst[:0], b[24:40]...)
		l4 = b[40:]
		// Extension headers: hop-by-hop, routing, destination options,
		// fragment. Bounded: each step consumes at least 8 bytes.
		for len(l4) >= 8 {
			switch next {
			case 0, 43, 60:
				n := (int(l4[1]) + 1) * 8
				next = l4[0]
				if n > len(l4) {
					l4 = nil
					break
				}
				l4 = l4[n:]
				continue
			case 44:
				next = l4[0]
				fo := binary.BigEndian.Uint16(l4[2:])
				f.FragmentOffset = uint32(fo >> 3)
				f.FragmentId = binary.BigEndian.Uint32(l4[4:])
				l4 = l4[8:]
				if f.FragmentOffset != 0 {
					l4 = nil
				}
				continue
			}
			break
		}
	default:
		f.Etype = uint32(etype)
		return false
	}
	f.Proto = uint32(next)
	switch next {
	case 6:
		if len(l4) >= 14 {
			f.TcpFlags = uint32(l4[13])
		}
		fallthrough
	case 17, 132:
		if len(l4) >= 4 {
			f.SrcPort = uint32(binary.BigEndian.Uint16(l4))
			f.DstPort = uint32(binary.BigEndian.Uint16(l4[2:]))
		}
	case 1, 58:
		if len(l4) >= 2 {
			f.IcmpType, f.IcmpCode = uint32(l4[0]), uint32(l4[1])
		}
	}
	return true
}
