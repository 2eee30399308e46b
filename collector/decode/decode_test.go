package decode

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

var (
	exporterAddr = netip.MustParseAddr("192.0.2.10")
	boot         = time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC)
	export       = time.Date(2025, 3, 4, 12, 0, 10, 0, time.UTC)
	received     = export.Add(20 * time.Millisecond)
)

// testFlows is a mix: TCP with flags, UDP, ICMP, IPv4 and IPv6.
func testFlows() []flowgen.Flow {
	return []flowgen.Flow{
		{Src: netip.MustParseAddr("198.51.100.7"), Dst: netip.MustParseAddr("203.0.113.9"), SrcPort: 51000, DstPort: 443,
			Proto: 6, TCPFlags: 0x1b, Bytes: 12000, Packets: 10, Start: export.Add(-9 * time.Second), End: export.Add(-1 * time.Second),
			InIf: 3, OutIf: 7, SrcAS: 64500, DstAS: 64501, NextHop: netip.MustParseAddr("10.0.0.1"), SrcMask: 24, DstMask: 22, Tos: 0x10},
		{Src: netip.MustParseAddr("203.0.113.9"), Dst: netip.MustParseAddr("198.51.100.7"), SrcPort: 53, DstPort: 40000,
			Proto: 17, Bytes: 300, Packets: 2, Start: export.Add(-5 * time.Second), End: export.Add(-4 * time.Second), InIf: 7, OutIf: 3},
		{Src: netip.MustParseAddr("198.51.100.8"), Dst: netip.MustParseAddr("203.0.113.10"), Proto: 1, ICMPType: 8, ICMPCode: 0,
			Bytes: 84, Packets: 1, Start: export.Add(-2 * time.Second), End: export.Add(-2 * time.Second)},
		{Src: netip.MustParseAddr("2001:db8::1"), Dst: netip.MustParseAddr("2001:db8:1::2"), SrcPort: 443, DstPort: 60000,
			Proto: 6, TCPFlags: 0x12, Bytes: 1500, Packets: 1, Start: export.Add(-3 * time.Second), End: export.Add(-3 * time.Second),
			NextHop: netip.MustParseAddr("2001:db8::ff"), SrcMask: 48, DstMask: 64},
	}
}

func collect(t *testing.T, d *Decoder, pkts ...[]byte) ([]*pb.Flow, error) {
	t.Helper()
	var out []*pb.Flow
	var errs error
	for _, p := range pkts {
		_, err := d.Decode(p, exporterAddr, received, HandlerFunc(func(f *pb.Flow) {
			out = append(out, proto.Clone(f).(*pb.Flow))
		}))
		errs = errors.Join(errs, err)
	}
	return out, errs
}

func addr(b []byte) netip.Addr { a, _ := netip.AddrFromSlice(b); return a }

func checkFlows(t *testing.T, got []*pb.Flow, want []flowgen.Flow, timePrecision time.Duration, checkTimes bool, rate uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d flows, want %d", len(got), len(want))
	}
	// Encoders write IPv4 sets before IPv6 sets, like the input order here.
	for i, w := range want {
		g := got[i]
		if addr(g.SrcAddr) != w.Src || addr(g.DstAddr) != w.Dst {
			t.Errorf("flow %d: addrs %v -> %v, want %v -> %v", i, addr(g.SrcAddr), addr(g.DstAddr), w.Src, w.Dst)
		}
		if g.Bytes != w.Bytes || g.Packets != w.Packets {
			t.Errorf("flow %d: bytes/packets %d/%d, want %d/%d", i, g.Bytes, g.Packets, w.Bytes, w.Packets)
		}
		if g.Proto != uint32(w.Proto) || g.TcpFlags != uint32(w.TCPFlags) {
			t.Errorf("flow %d: proto %d flags %#x, want %d %#x", i, g.Proto, g.TcpFlags, w.Proto, w.TCPFlags)
		}
		if w.Proto != 1 && (g.SrcPort != uint32(w.SrcPort) || g.DstPort != uint32(w.DstPort)) {
			t.Errorf("flow %d: ports %d -> %d, want %d -> %d", i, g.SrcPort, g.DstPort, w.SrcPort, w.DstPort)
		}
		if g.IcmpType != uint32(w.ICMPType) || g.IcmpCode != uint32(w.ICMPCode) {
			t.Errorf("flow %d: icmp %d/%d, want %d/%d", i, g.IcmpType, g.IcmpCode, w.ICMPType, w.ICMPCode)
		}
		if g.SamplingRate != rate || g.SamplingApplied {
			t.Errorf("flow %d: sampling rate %d applied %v, want %d false", i, g.SamplingRate, g.SamplingApplied, rate)
		}
		if addr(g.SamplerAddress) != exporterAddr {
			t.Errorf("flow %d: sampler %v", i, addr(g.SamplerAddress))
		}
		if g.TimeReceivedNs != uint64(received.UnixNano()) {
			t.Errorf("flow %d: received %d", i, g.TimeReceivedNs)
		}
		if checkTimes {
			ds := time.Duration(int64(g.TimeFlowStartNs) - w.Start.UnixNano())
			de := time.Duration(int64(g.TimeFlowEndNs) - w.End.UnixNano())
			if ds < 0 {
				ds = -ds
			}
			if de < 0 {
				de = -de
			}
			if ds > timePrecision || de > timePrecision {
				t.Errorf("flow %d: start/end off by %v/%v (precision %v)", i, ds, de, timePrecision)
			}
		}
	}
}

func TestNetFlowTimeModes(t *testing.T) {
	cases := []struct {
		name      string
		version   int
		mode      flowgen.TimeMode
		precision time.Duration
	}{
		{"v9 uptime", 9, flowgen.TimeUptime, time.Second}, // header has whole seconds
		{"v9 millis", 9, flowgen.TimeMillis, 0},
		{"ipfix uptime+IE160", 10, flowgen.TimeUptime, time.Millisecond},
		{"ipfix seconds", 10, flowgen.TimeSeconds, 0},
		{"ipfix millis", 10, flowgen.TimeMillis, 0},
		{"ipfix micros NTP", 10, flowgen.TimeMicros, time.Microsecond},
		{"ipfix nanos NTP", 10, flowgen.TimeNanos, 2 * time.Nanosecond},
		{"ipfix delta micros", 10, flowgen.TimeDeltaMicros, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := &flowgen.Encoder{Version: c.version, Domain: 7, Time: c.mode, Boot: boot}
			d := NewDecoder(NewState(Config{}, NewMetrics(nil)))
			got, err := collect(t, d, e.Datagram(export, testFlows()))
			if err != nil {
				t.Fatal(err)
			}
			checkFlows(t, got, testFlows(), c.precision, true, 0)
		})
	}
}

func TestUptimeWrap(t *testing.T) {
	// IPFIX IE 22 is 32-bit ms since IE 160: after 49.7 days it wraps.
	sysInit := uint64(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli())
	exportMs := time.Date(2025, 3, 1, 0, 0, 0, 0, time.UTC).UnixMilli() // 59 days later
	start := exportMs - 5000
	v := uint32(uint64(start) - sysInit) // wrapped counter value
	tm := times{firstUp: v, has: hasFirstUp}
	f := &pb.Flow{}
	if !tm.resolve(f, &header{version: 10, exportMs: exportMs}, sysInit) {
		t.Fatal("not resolved")
	}
	if got := int64(f.TimeFlowStartNs) / 1e6; got != start {
		t.Fatalf("start %d, want %d (off by %d ms)", got, start, got-start)
	}
}
