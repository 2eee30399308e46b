package decode

import (
	"net/netip"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// benchFlows returns n flows like a border router's: mostly IPv4 TCP/UDP.
func benchFlows(n int) []flowgen.Flow {
	fl := make([]flowgen.Flow, n)
	for i := range fl {
		fl[i] = flowgen.Flow{Src: netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}), Dst: netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}),
			SrcPort: uint16(1024 + i), DstPort: 443, Proto: 6, TCPFlags: 0x18, Bytes: 1500 * 10, Packets: 10,
			Start: export.Add(-10 * time.Second), End: export.Add(-time.Second), InIf: 1, OutIf: 2, SrcAS: 64500, DstAS: 64501}
		if i%5 == 4 {
			fl[i].Proto = 17
		}
	}
	return fl
}

type countHandler struct{ n int }

func (c *countHandler) Flow(*pb.Flow) { c.n++ }

// BenchmarkDecode reports ns and allocs per flow (b.N counts flows).
func BenchmarkDecode(b *testing.B) {
	v9 := &flowgen.Encoder{Version: 9, Boot: boot, SamplingRate: 100}
	ipfix := &flowgen.Encoder{Version: 10, Time: flowgen.TimeMillis, Boot: boot, SamplingRate: 100}
	cases := []struct {
		name  string
		setup []byte
		pkt   []byte
		flows int
	}{
		{"netflow9", v9.Templates(export), v9.Data(export, benchFlows(24)), 24},
		{"ipfix", ipfix.Templates(export), ipfix.Data(export, benchFlows(24)), 24},
		{"netflow5", nil, flowgen.NetFlowV5(flowgen.V5Header{Export: export, Boot: boot, SamplingRate: 100}, benchFlows(30)), 30},
		{"sflow", nil, flowgen.SFlow(flowgen.SFlowHeader{Agent: exporterAddr, SamplingRate: 1000}, benchFlows(8)), 8},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			d := NewDecoder(NewState(Config{}, NewMetrics(nil)))
			h := &countHandler{}
			if c.setup != nil {
				d.Decode(c.setup, exporterAddr, received, h)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(c.pkt) / c.flows))
			for i := 0; i < b.N; i += c.flows {
				d.Decode(c.pkt, exporterAddr, received, h)
			}
			if h.n < b.N {
				b.Fatalf("decoded %d flows, want >= %d", h.n, b.N)
			}
		})
	}
}
