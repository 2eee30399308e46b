package export

import (
	"net/netip"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// TestDatagramsDecode sends what the exporters send through the
// collector's decoder: every record comes back with its addresses, ports,
// counts and (NetFlow v9 / IPFIX) times.
func TestDatagramsDecode(t *testing.T) {
	now := time.Now().Truncate(time.Millisecond)
	var flows []flowgen.Flow
	for i := range 45 { // more than one datagram of each family
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		dst := netip.MustParseAddr("198.18.10.10")
		if i%3 == 0 {
			src, dst = netip.MustParseAddr("2001:db8:1::1"), netip.MustParseAddr("2001:db8:a::10")
		}
		flows = append(flows, flowgen.Flow{Src: src, Dst: dst, SrcPort: uint16(40000 + i), DstPort: 443, Proto: 6, TCPFlags: 0x02,
			Bytes: 60, Packets: 1, Start: now.Add(-2 * time.Second), End: now.Add(-time.Second), InIf: 1, OutIf: 2})
	}
	for _, proto := range []string{scenario.NetFlow9, scenario.IPFIX, scenario.SFlow} {
		t.Run(proto, func(t *testing.T) {
			e, err := NewEncoder(proto, netip.MustParseAddr("127.0.100.1"), 7, 1000, now.Add(-time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			dgs := e.Datagrams(now, flows)
			if len(dgs) < 3 {
				t.Fatalf("%d datagrams for %d flows", len(dgs), len(flows))
			}
			for _, d := range dgs {
				if len(d) > 1500 {
					t.Errorf("datagram of %d bytes exceeds the MTU", len(d))
				}
			}
			d := decode.NewDecoder(decode.NewState(decode.Config{}, decode.NewMetrics(nil)))
			var got []*pb.Flow
			for _, dg := range dgs {
				if _, err := d.Decode(dg, netip.MustParseAddr("127.0.100.1"), now, decode.HandlerFunc(func(f *pb.Flow) {
					got = append(got, proto2(f))
				})); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) != len(flows) {
				t.Fatalf("decoded %d flows, sent %d", len(got), len(flows))
			}
			seen := map[uint32]bool{}
			for _, f := range got {
				seen[f.GetSrcPort()] = true
				if f.GetDstPort() != 443 || f.GetProto() != 6 || f.GetTcpFlags()&0x02 == 0 || f.GetBytes() != 60 || f.GetPackets() != 1 {
					t.Fatalf("decoded %v", f)
				}
				end := time.Unix(0, int64(f.GetTimeFlowEndNs()))
				if proto != scenario.SFlow && (end.After(now) || now.Sub(end) > 2*time.Second) {
					t.Fatalf("flow end %s, sent %s", end, now.Add(-time.Second))
				}
			}
			if len(seen) != len(flows) {
				t.Errorf("%d distinct flows decoded, want %d", len(seen), len(flows))
			}
		})
	}
}

func proto2(f *pb.Flow) *pb.Flow {
	c := &pb.Flow{SrcPort: f.GetSrcPort(), DstPort: f.GetDstPort(), Proto: f.GetProto(), TcpFlags: f.GetTcpFlags(),
		Bytes: f.GetBytes(), Packets: f.GetPackets(), TimeFlowEndNs: f.GetTimeFlowEndNs()}
	return c
}
