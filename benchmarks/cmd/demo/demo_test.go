package main

import (
	"strings"
	"testing"

	"github.com/packetworks/flowsentry/alerter/notify"
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
