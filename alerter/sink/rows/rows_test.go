package rows

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden.json")

func golden(t *testing.T, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name+".golden.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update once)", err)
	}
	if strings.TrimSpace(string(want)) != strings.TrimSpace(string(got)) {
		t.Fatalf("%s differs from golden file:\n%s", name, got)
	}
}

var t0 = time.Date(2026, 11, 27, 10, 0, 1, 500_000_000, time.UTC)

func goodFlow() *pb.Flow {
	return &pb.Flow{Type: pb.Flow_NETFLOW_V9, TimeReceivedNs: uint64(t0.UnixNano()),
		TimeFlowStartNs: uint64(t0.Add(-time.Second).UnixNano()), TimeFlowEndNs: uint64(t0.UnixNano()),
		SequenceNum: 7, SamplingRate: 1000, SamplingApplied: true, SamplerAddress: []byte{192, 0, 2, 1},
		ObservationDomainId: 3, Bytes: 1_500_000, Packets: 1000,
		SrcAddr: []byte{198, 51, 100, 7}, DstAddr: []byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1},
		Etype: 0x86dd, Proto: 6, SrcPort: 443, DstPort: 51000, InIf: 10, OutIf: 20, SrcAs: 64500, DstAs: 64501,
		IpTos: 0x10, TcpFlags: 0x112, FragmentOffset: 0, Customer: "acme", Subnet: "2001:db8::/48",
		Direction: pb.Direction_DIRECTION_INBOUND}
}

func TestFromFlowGolden(t *testing.T) {
	r, err := FromFlow(goodFlow(), 5, 1234, 2)
	if err != nil {
		t.Fatal(err)
	}
	if r.Day() != 20261127 {
		t.Errorf("Day = %d", r.Day())
	}
	// Addresses are raw 16-byte strings; the golden file shows them as text.
	type view struct {
		Flow
		Exporter, SrcAddr, DstAddr string
	}
	golden(t, "flow", view{Flow: r, Exporter: addrText(r.Exporter), SrcAddr: addrText(r.SrcAddr), DstAddr: addrText(r.DstAddr)})
}

func addrText(s string) string {
	if len(s) != 16 {
		return fmt.Sprintf("invalid(%d bytes)", len(s))
	}
	return netip.AddrFrom16([16]byte([]byte(s))).String()
}

func TestFromFlowRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(f *pb.Flow)
		want   string
	}{
		{"no receive time", func(f *pb.Flow) { f.TimeReceivedNs = 0 }, "time_received_ns: missing"},
		{"after 2106", func(f *pb.Flow) { f.TimeFlowEndNs = 5e18 }, "time_flow_end_ns"},
		{"flow type", func(f *pb.Flow) { f.Type = 9 }, "type"},
		{"exporter 5 bytes", func(f *pb.Flow) { f.SamplerAddress = []byte{1, 2, 3, 4, 5} }, "sampler_address"},
		{"src addr 3 bytes", func(f *pb.Flow) { f.SrcAddr = []byte{1, 2, 3} }, "src_addr"},
		{"sampling rate", func(f *pb.Flow) { f.SamplingRate = 1 << 33 }, "sampling_rate"},
		{"port", func(f *pb.Flow) { f.DstPort = 70000 }, "dst_port"},
		{"proto", func(f *pb.Flow) { f.Proto = 256 }, "proto"},
		{"tcp flags beyond 9 bits", func(f *pb.Flow) { f.TcpFlags = 0x400 }, "tcp_flags"},
		{"icmp", func(f *pb.Flow) { f.IcmpType = 300 }, "icmp_type"},
		{"direction", func(f *pb.Flow) { f.Direction = 3 }, "direction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := goodFlow()
			tc.mutate(f)
			_, err := FromFlow(f, 0, 0, 0)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
	if _, err := FromFlow(goodFlow(), 70000, 0, 0); err == nil {
		t.Error("partition beyond UInt16 accepted")
	}
	// An empty flow with a receive time is valid: zero addresses, unknowns.
	if _, err := FromFlow(&pb.Flow{TimeReceivedNs: 1}, 0, 0, 0); err != nil {
		t.Errorf("minimal flow: %v", err)
	}
}

func goodEvent() *pb.AnomalyEvent {
	return &pb.AnomalyEvent{Id: "inc-1", Kind: pb.AnomalyEvent_UPDATE, Seq: 2, Class: "syn_flood",
		Severity: pb.Severity_SEVERITY_CRITICAL, Customer: "acme", Subnet: "203.0.113.0/24",
		Direction: pb.Direction_DIRECTION_INBOUND, StartedAtNs: uint64(t0.UnixNano()),
		UpdatedAtNs: uint64(t0.Add(time.Minute).UnixNano()), Metric: "pps_syn", Unit: "pps",
		Observed: 90000, Expected: 1000, Score: 42.5, PeakBps: 1e9, PeakPps: 95000, TotalBytes: 9e9, TotalPackets: 3e7,
		Fingerprint: &pb.Fingerprint{TopSources: []*pb.TopItem{{Key: "198.51.100.7", Packets: 500, Share: 0.5}},
			TopDstPorts: []*pb.TopItem{{Key: "443", Packets: 900, Share: 0.9}}, DistinctSources: 1200,
			Mitigation: &pb.Mitigation{DstPrefix: "203.0.113.9/32", Protocols: []uint32{6}, TcpFlags: "syn&!ack", Action: "discard"}},
		Reason: "above threshold"}
}

func TestFromAnomalyGolden(t *testing.T) {
	a, err := FromAnomaly(goodEvent())
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "alert", a)
	var fp map[string]any
	if err := json.Unmarshal([]byte(a.Fingerprint), &fp); err != nil || fp["mitigation"] == nil {
		t.Fatalf("fingerprint is not the protojson object: %v %q", err, a.Fingerprint)
	}
}

func TestFromAnomalyRejects(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(e *pb.AnomalyEvent)
		want   string
	}{
		{"no id", func(e *pb.AnomalyEvent) { e.Id = "" }, "id"},
		{"kind unknown", func(e *pb.AnomalyEvent) { e.Kind = 0 }, "kind"},
		{"class", func(e *pb.AnomalyEvent) { e.Class = "tsunami" }, "class"},
		{"severity", func(e *pb.AnomalyEvent) { e.Severity = 0 }, "severity"},
		{"start", func(e *pb.AnomalyEvent) { e.StartedAtNs = 0 }, "started_at_ns"},
		{"direction", func(e *pb.AnomalyEvent) { e.Direction = -1 }, "direction"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := goodEvent()
			tc.mutate(e)
			_, err := FromAnomaly(e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to name %q", err, tc.want)
			}
		})
	}
}

func TestFromBaseline(t *testing.T) {
	s := &pb.BaselineSnapshot{TimeNs: uint64(t0.UnixNano()), Customer: "acme", Subnet: "203.0.113.0/24",
		Direction: pb.Direction_DIRECTION_INBOUND, Metrics: []*pb.BaselineMetric{
			{Metric: "bps", Expected: 1e6, Spread: 5e4, Observed: 1.2e6, P95: 1.5e6, Samples: 1440},
			{Metric: "pps", Expected: 1e3, Spread: 50, Observed: 1.1e3, P95: 1.4e3, Samples: 1440}}}
	bs, err := FromBaseline(s)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "baselines", bs)
	s.Metrics[1].Metric = ""
	if _, err := FromBaseline(s); err == nil || !strings.Contains(err.Error(), "metrics[1].metric") {
		t.Fatalf("err = %v", err)
	}
	if _, err := FromBaseline(&pb.BaselineSnapshot{}); err == nil {
		t.Fatal("snapshot without time accepted")
	}
}
