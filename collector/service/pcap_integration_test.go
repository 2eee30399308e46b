//go:build integration

package service

import (
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"
)

// truthKey identifies one direction of a flow, as softflowd exports it.
type truthKey struct {
	src, dst         netip.Addr
	srcPort, dstPort uint16
	proto            uint8
}

type truth struct {
	bytes, packets uint64 // IP bytes (total length), packets
	flags          uint8
	first, last    time.Time
	icmpType       uint8
	icmpCode       uint8
}

type pkt struct {
	at       time.Duration
	src, dst string
	proto    uint8
	sport    uint16
	dport    uint16
	flags    uint8 // TCP: FIN 1, SYN 2, RST 4, PSH 8, ACK 16
	payload  int
	icmpType uint8
}

// trafficMix: a TCP session (handshake, data, FIN) over IPv4, a UDP
// exchange, ICMP echo, and a TCP and UDP exchange over IPv6. The
// protected side is 10.1.0.0/16 and fd00:1::/48.
func trafficMix() []pkt {
	return []pkt{
		{0, "192.0.2.10", "10.1.0.5", 6, 40000, 443, 2, 0, 0},
		{10 * time.Millisecond, "10.1.0.5", "192.0.2.10", 6, 443, 40000, 18, 0, 0},
		{20 * time.Millisecond, "192.0.2.10", "10.1.0.5", 6, 40000, 443, 16, 0, 0},
		{30 * time.Millisecond, "192.0.2.10", "10.1.0.5", 6, 40000, 443, 24, 517, 0},
		{40 * time.Millisecond, "10.1.0.5", "192.0.2.10", 6, 443, 40000, 24, 1400, 0},
		{50 * time.Millisecond, "10.1.0.5", "192.0.2.10", 6, 443, 40000, 24, 1400, 0},
		{60 * time.Millisecond, "192.0.2.10", "10.1.0.5", 6, 40000, 443, 17, 0, 0},
		{70 * time.Millisecond, "10.1.0.5", "192.0.2.10", 6, 443, 40000, 17, 0, 0},
		{100 * time.Millisecond, "192.0.2.20", "10.1.2.3", 17, 5353, 53, 0, 40, 0},
		{110 * time.Millisecond, "10.1.2.3", "192.0.2.20", 17, 53, 5353, 0, 120, 0},
		{200 * time.Millisecond, "192.0.2.30", "10.1.0.9", 1, 0, 0, 0, 56, 8},
		{1200 * time.Millisecond, "192.0.2.30", "10.1.0.9", 1, 0, 0, 0, 56, 8},
		{300 * time.Millisecond, "2001:db8::7", "fd00:1::10", 6, 50000, 22, 2, 0, 0},
		{310 * time.Millisecond, "fd00:1::10", "2001:db8::7", 6, 22, 50000, 18, 0, 0},
		{320 * time.Millisecond, "2001:db8::7", "fd00:1::10", 6, 50000, 22, 24, 300, 0},
		{400 * time.Millisecond, "2001:db8::8", "fd00:1::11", 17, 7000, 7001, 0, 900, 0},
		{2500 * time.Millisecond, "2001:db8::8", "fd00:1::11", 17, 7000, 7001, 0, 900, 0},
	}
}

// writePcap writes the mix starting at base and returns the ground truth.
func writePcap(t *testing.T, path string, base time.Time) map[truthKey]*truth {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	want := map[truthKey]*truth{}
	mix := trafficMix()
	// pcap must be in time order
	for i := 1; i < len(mix); i++ {
		for j := i; j > 0 && mix[j].at < mix[j-1].at; j-- {
			mix[j], mix[j-1] = mix[j-1], mix[j]
		}
	}
	for _, p := range mix {
		src, dst := netip.MustParseAddr(p.src), netip.MustParseAddr(p.dst)
		eth := &layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, 2}}
		var ls []gopacket.SerializableLayer
		var nl gopacket.NetworkLayer
		if src.Is4() {
			eth.EthernetType = layers.EthernetTypeIPv4
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocol(p.proto), SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			ls, nl = append(ls, eth, ip), ip
		} else {
			eth.EthernetType = layers.EthernetTypeIPv6
			ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocol(p.proto), SrcIP: src.AsSlice(), DstIP: dst.AsSlice()}
			ls, nl = append(ls, eth, ip), ip
		}
		payload := gopacket.Payload(make([]byte, p.payload))
		switch p.proto {
		case 6:
			// 8 bytes of options keep every frame above Ethernet's 60-byte
			// minimum: softflowd counts a padded frame's padding as IP bytes.
			tcp := &layers.TCP{SrcPort: layers.TCPPort(p.sport), DstPort: layers.TCPPort(p.dport), Seq: 1, Window: 1024,
				FIN: p.flags&1 != 0, SYN: p.flags&2 != 0, RST: p.flags&4 != 0, PSH: p.flags&8 != 0, ACK: p.flags&16 != 0,
				Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 180}},
					{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop},
					{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}}}
			_ = tcp.SetNetworkLayerForChecksum(nl)
			ls = append(ls, tcp, payload)
		case 17:
			udp := &layers.UDP{SrcPort: layers.UDPPort(p.sport), DstPort: layers.UDPPort(p.dport)}
			_ = udp.SetNetworkLayerForChecksum(nl)
			ls = append(ls, udp, payload)
		case 1:
			ls = append(ls, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(p.icmpType, 0), Id: 1, Seq: 1}, payload)
		}
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
			t.Fatal(err)
		}
		data := buf.Bytes()
		if len(data) < 60 {
			t.Fatalf("frame of %d bytes would be padded", len(data))
		}
		ts := base.Add(p.at)
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}, data); err != nil {
			t.Fatal(err)
		}
		k := truthKey{src, dst, p.sport, p.dport, p.proto}
		tr := want[k]
		if tr == nil {
			tr = &truth{first: ts, icmpType: p.icmpType}
			want[k] = tr
		}
		// IP bytes: the Ethernet layer pads short frames to 60 bytes.
		if src.Is4() {
			tr.bytes += uint64(data[16])<<8 | uint64(data[17])
		} else {
			tr.bytes += 40 + (uint64(data[18])<<8 | uint64(data[19]))
		}
		tr.packets++
		tr.flags |= p.flags
		tr.last = ts
	}
	return want
}
