package flows

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/benchmarks/quality/export"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/schemas/pb"
	"google.golang.org/protobuf/proto"
)

const every = `
name: every
seed: 3
tail: 30s
exporters:
  - {name: r1, protocol: netflow9, address: 127.0.0.1, sampling: 100}
  - {name: r2, protocol: ipfix, address: 127.0.0.2, sampling: 1}
customers:
  - id: a
    exporter: r1
    subnets:
      - {prefix: 198.18.10.0/24, profile: hosting, hosts: 4, in_pps: 20000, out_pps: 30000}
      - {prefix: "2001:db8:a::/48", profile: office, hosts: 2, in_pps: 5000, out_pps: 5000}
  - id: b
    exporter: r2
    subnets:
      - {prefix: 198.18.20.0/24, profile: hosting, hosts: 4, in_pps: 2000, out_pps: 3000}
attacks:
  - {kind: syn_flood, customer: a, target: "2001:db8:a::10", port: 443, start: 0s, duration: 5s, pps: 50000, sources: 500}
  - {kind: fragment_flood, customer: a, target: 198.18.10.11, start: 0s, duration: 5s, magnitude: 3, sources: 50}
  - {kind: icmp_flood, customer: b, target: 198.18.20.12, start: 0s, duration: 5s, magnitude: 3, sources: 50}
  - {kind: scan, customer: b, target: 198.18.20.13, port: 23, start: 0s, duration: 5s, pps: 300}
  - {kind: volumetric, customer: b, subnet: 0, start: 0s, duration: 5s, magnitude: 2, sources: 50}
`

// engineFields is what the detector's engine reads of a flow.
func engineFields(f *pb.Flow) *pb.Flow {
	return &pb.Flow{Subnet: f.Subnet, Direction: f.Direction, Customer: f.Customer, TimeFlowEndNs: f.TimeFlowEndNs,
		TimeReceivedNs: f.TimeReceivedNs, SrcAddr: f.SrcAddr, DstAddr: f.DstAddr, Packets: f.Packets, Bytes: f.Bytes,
		Proto: f.Proto, TcpFlags: f.TcpFlags, FragmentOffset: f.FragmentOffset, IpFlags: f.IpFlags, SrcPort: f.SrcPort,
		DstPort: f.DstPort, SamplingRate: f.SamplingRate, SamplingApplied: f.SamplingApplied,
		MinPacketLength: f.MinPacketLength, MaxPacketLength: f.MaxPacketLength, IcmpType: f.IcmpType, IcmpCode: f.IcmpCode,
		TimeFlowStartNs: f.TimeFlowStartNs}
}

type collect struct{ out []*pb.Flow }

func (c *collect) Flow(f *pb.Flow) { c.out = append(c.out, engineFields(f)) }

// TestConverterMatchesTheCollector encodes every kind of record with
// package export, decodes the datagrams with the collector's decoder and
// normaliser, and requires the converter to produce the same flows.
func TestConverterMatchesTheCollector(t *testing.T) {
	sc, err := scenario.Parse([]byte(every))
	if err != nil {
		t.Fatal(err)
	}
	s := &Scenario{Name: "every", SC: sc, Domain: 10}
	inv, _, err := Inventory([]*Scenario{s})
	if err != nil {
		t.Fatal(err)
	}
	live := time.Date(2026, 1, 7, 14, 0, 0, 0, time.UTC)
	g := scenario.NewGenerator(sc)
	g.StartLive(live)
	recs := g.Step(live, live.Add(3*time.Second), nil)
	recv := live.Add(4 * time.Second)

	var want collect
	conv := NewConverter(inv, &want)
	var got collect
	st := decode.NewState(decode.Config{}, decode.NewMetrics(nil))
	dec := decode.NewDecoder(st)
	norm := NewConverter(inv, &got).norm
	kinds := map[int]bool{}
	for ei, e := range sc.Exporters {
		var mine []scenario.Record
		for _, r := range recs {
			if r.Exporter == ei {
				mine = append(mine, r)
				conv.Flow(&r, e.Sampling, s.Domain+2*uint32(ei), recv)
				kinds[r.Attack] = true
			}
		}
		d := export.NewDomain(s.Domain+2*uint32(ei), e.Sampling)
		for _, dg := range d.Datagrams(recv, mine, nil) {
			if _, err := dec.Decode(dg, netip.MustParseAddr("127.0.0.1"), recv, decode.HandlerFunc(func(f *pb.Flow) { norm.Flow(f) })); err != nil {
				t.Fatalf("decode: %v", err)
			}
		}
	}
	if len(kinds) != len(sc.Attacks)+1 {
		t.Fatalf("records of %d attacks and background, want all %d", len(kinds)-1, len(sc.Attacks))
	}
	if len(got.out) != len(want.out) || len(got.out) < 1000 {
		t.Fatalf("collector decoded %d flows, converter made %d", len(got.out), len(want.out))
	}
	key := func(f *pb.Flow) string { b, _ := proto.Marshal(f); return string(b) }
	have := map[string]int{}
	for _, f := range got.out {
		have[key(f)]++
	}
	frag := 0
	for i, f := range want.out {
		if f.FragmentOffset > 0 {
			frag++
		}
		if have[key(f)] == 0 {
			t.Fatalf("flow %d not decoded identically by the collector:\n%v", i, strings.ReplaceAll(f.String(), " ", "\n"))
		}
		have[key(f)]--
	}
	if frag == 0 {
		t.Fatal("no fragment flow went through")
	}
}
