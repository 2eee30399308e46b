package window

import (
	"testing"

	"github.com/packetworks/flowsentry/schemas/pb"
)

// Samples counts the evidence behind each rate: packets as the exporter
// sampled them (before the collector scaled them by the rate), records
// for flows and distinct counts.
func TestSamplesCountSampledPackets(t *testing.T) {
	syn := &pb.Flow{Proto: 6, TcpFlags: 0x02, Packets: 2000, Bytes: 2000 * 60, SamplingRate: 1000, SamplingApplied: true}
	frag := &pb.Flow{Proto: 17, FragmentOffset: 185, Packets: 1000, Bytes: 1000 * 1500, SamplingRate: 1000, SamplingApplied: true}
	icmp := &pb.Flow{Proto: 1, Packets: 1000, Bytes: 1000 * 84, SamplingRate: 1000, SamplingApplied: true}
	raw := &pb.Flow{Proto: 17, Packets: 50, Bytes: 50 * 500}                                                 // unsampled
	notApplied := &pb.Flow{Proto: 6, Packets: 3, Bytes: 3 * 500, SamplingRate: 1000, SamplingApplied: false} // exporter counts
	zero := &pb.Flow{Proto: 1, Packets: 0, Bytes: 0, SamplingRate: 1000, SamplingApplied: true}              // counts as 1
	for _, tc := range []struct {
		name  string
		flows []*pb.Flow
		want  map[Metric]float64
	}{
		{"one sampled SYN record of 2 packets", []*pb.Flow{syn},
			map[Metric]float64{Pps: 2, Bps: 2, PpsTCP: 2, PpsSyn: 2, PpsICMP: 0, Flows: 1, DistinctSrc: 1}},
		{"two sampled ICMP packets read as 200 pps", []*pb.Flow{icmp, icmp},
			map[Metric]float64{Pps: 2, PpsICMP: 2, Flows: 2}},
		{"a sampled fragment", []*pb.Flow{frag}, map[Metric]float64{PpsFrag: 1, PpsUDP: 1}},
		{"unsampled and not-applied records count as they are", []*pb.Flow{raw, notApplied},
			map[Metric]float64{Pps: 53, PpsUDP: 50, PpsTCP: 3, Flows: 2}},
		{"a record of 0 packets is one", []*pb.Flow{zero}, map[Metric]float64{Pps: 1, PpsICMP: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := NewAgg(10)
			a.Reset(0)
			for _, f := range tc.flows {
				a.Fold(f, 0)
			}
			ft := Compute(a, 0, 10)
			for m, want := range tc.want {
				if got := ft.Samples[m]; got != want {
					t.Errorf("samples of %s = %g, want %g (value %g)", m, got, want, ft.Values[m])
				}
			}
		})
	}
}
