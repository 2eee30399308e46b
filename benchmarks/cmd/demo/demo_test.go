package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/benchmarks/scenario"
	"github.com/packetworks/flowsentry/collector/decode"
	"github.com/packetworks/flowsentry/collector/flowgen"
	"github.com/packetworks/flowsentry/schemas/pb"
)

func TestRenderSlack(t *testing.T) {
	m := notify.SlackMessage{Text: "[CRITICAL] syn_flood on acme", Blocks: []notify.SlackBlock{
		{Type: "header", Text: &notify.SlackText{Type: "plain_text", Text: ":red_circle: [CRITICAL] syn_flood on acme"}},
		{Type: "section", Text: &notify.SlackText{Type: "mrkdwn", Text: "*syn_flood* on acme"}, Fields: []*notify.SlackText{
			{Type: "mrkdwn", Text: "*Customer*\nacme"}, {Type: "mrkdwn", Text: "*Since*\n<!date^1746515289^{date_short_pretty}|2025-05-06 07:08:09 UTC> (3m)"},
			{Type: "mrkdwn", Text: "*Peak*\n1.20 Gbps"}}},
		{Type: "section", Text: &notify.SlackText{Type: "mrkdwn", Text: "*Suggested mitigation*\n```dst 203.0.113.10/32 syn&amp;!ack```"}},
		{Type: "divider"},
		{Type: "context", Elements: []*notify.SlackText{{Type: "mrkdwn", Text: "Incident `an-7f3c`"},
			{Type: "mrkdwn", Text: "<https://x.example/incidents/an-7f3c|Open in console>"}}},
	}}
	title, text, ids := renderSlack(m)
	for _, want := range []string{"🔴 [CRITICAL] syn_flood on acme", "Customer: acme", "Since: 2025-05-06 07:08:09 UTC (3m)",
		"Peak: 1.20 Gbps", "    | dst 203.0.113.10/32 syn&!ack", "Incident `an-7f3c` · [Open in console]"} {
		if !strings.Contains(text, want) {
			t.Errorf("rendered text lacks %q:\n%s", want, text)
		}
	}
	if title != "🔴 [CRITICAL] syn_flood on acme" || len(ids) != 1 || ids[0] != "an-7f3c" {
		t.Errorf("title %q ids %v", title, ids)
	}
	if strings.Contains(text, "*") || strings.Contains(text, "<!date") {
		t.Errorf("mrkdwn left in the rendering:\n%s", text)
	}
}

func TestRenderMail(t *testing.T) {
	raw := "From: noc-alerts@packetworks.example\r\nTo: noc@acme.example\r\n" +
		"Subject: =?utf-8?q?=5BPacketWorks=5D_Possible_attack_on_your_network_=E2=80=94_test?=\r\n" +
		"X-Flowsentry-Incident: an-1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
		"Hello ACME,\r\n\r\nIt reaches 2.10M packets per second, a very long line that was soft-=\r\nbroken.\r\n"
	title, text, id, err := renderMail(raw)
	if err != nil {
		t.Fatal(err)
	}
	if title != "[PacketWorks] Possible attack on your network — test" || id != "an-1" {
		t.Errorf("title %q id %q", title, id)
	}
	if !strings.Contains(text, "a very long line that was soft-broken.") || !strings.Contains(text, "To: noc@acme.example") {
		t.Errorf("body not decoded:\n%s", text)
	}
	if _, _, _, err := renderMail("not a mail"); err == nil {
		t.Error("a message without headers was accepted")
	}
}

// TestDatagramsDecode sends what the demo's exporters send through the
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
			e := newEncoder(proto, netip.MustParseAddr("127.0.100.1"), 7, 1000, now.Add(-time.Hour))
			dgs := e.datagrams(now, flows)
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
