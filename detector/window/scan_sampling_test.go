package window

import (
	"net/netip"
	"testing"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// A scan seen through a sampling router arrives as records of one sampled
// packet, scaled up to the sampling rate. The scan evidence (packets per
// record of the busiest source) must count the packets the exporter saw,
// or scans behind sampled routers could never be recognised.
func TestTopFlowSourcePacketsPerFlowIgnoresSamplingScale(t *testing.T) {
	scanner := netip.MustParseAddr("203.0.113.30").AsSlice()
	for _, tc := range []struct {
		name    string
		rate    uint64
		applied bool
		packets uint64 // per record, as carried in the flow (scaled when applied)
		want    float64
	}{
		{"unsampled probes", 1, false, 1, 1},
		{"1:1000 sampled probes", 1000, true, 1000, 1},
		{"1:1000 sampled, two packets seen", 1000, true, 2000, 2},
		{"rate known but not applied", 1000, false, 3, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAgg(10)
			for i := 0; i < 200; i++ {
				dst := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}).AsSlice()
				a.Fold(&pb.Flow{SrcAddr: scanner, DstAddr: dst, Proto: 6, SrcPort: 40000, DstPort: uint32(1 + i),
					TcpFlags: 0x02, Packets: tc.packets, Bytes: 40 * tc.packets,
					SamplingRate: tc.rate, SamplingApplied: tc.applied, Direction: pb.Direction_DIRECTION_OUTBOUND}, i%10)
			}
			ft := Compute(a, 0, 10)
			if ft.TopFlowSrcPacketsPerFlow != tc.want {
				t.Fatalf("packets per flow of the top source = %g, want %g", ft.TopFlowSrcPacketsPerFlow, tc.want)
			}
			if ft.TopFlowSrcShare != 1 {
				t.Fatalf("top source share = %g, want 1", ft.TopFlowSrcShare)
			}
		})
	}
}
