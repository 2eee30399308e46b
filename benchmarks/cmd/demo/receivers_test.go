package main

import (
	"context"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
)

// TestReceiversAcceptTheAlerter sends with the alerter's own notifiers
// (Slack, PagerDuty, SMTP) to the demo's receivers and reads the feed.
func TestReceiversAcceptTheAlerter(t *testing.T) {
	b := newInbox(io.Discard)
	srv := httptest.NewServer(receiverHandler(b))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ss := smtp.NewServer(smtpBackend{b: b})
	ss.Domain = "localhost"
	go func() { _ = ss.Serve(ln) }()
	defer ss.Close()

	start := time.Now().Add(-time.Minute)
	in := &incident.Incident{ID: "an-42", State: incident.Open, Customer: "acme", Subnet: "198.18.10.0/24", Direction: "inbound",
		Class: "syn_flood", Severity: "critical", StartedAt: start, UpdatedAt: time.Now(), Metric: "pps_syn", Unit: "pps",
		Observed: 2e6, Expected: 1e4, Score: 42}
	ctx := context.Background()
	slack := &notify.Slack{URL: srv.URL + "/slack/T0/B0/x"}
	if err := slack.Notify(ctx, &notify.Message{Firing: []*incident.Incident{in}}); err != nil {
		t.Fatalf("slack: %v", err)
	}
	pd := &notify.PagerDuty{URL: srv.URL + "/v2/enqueue", RoutingKey: "k"}
	if err := pd.Notify(ctx, &notify.Message{Firing: []*incident.Incident{in}}); err != nil {
		t.Fatalf("pagerduty: %v", err)
	}
	mail := &notify.SMTP{Addr: ln.Addr().String(), From: "noc-alerts@packetworks.example", StartTLS: "none"}
	if err := mail.Send(ctx, notify.Mail{To: []string{"noc@acme.example"}, Subject: "[PacketWorks] Possible attack — é",
		Body: "Hello ACME,\n\nIt reaches 2.10M packets per second.", Headers: map[string]string{"X-Flowsentry-Incident": "an-42"}}); err != nil {
		t.Fatalf("smtp: %v", err)
	}

	items, rejected := b.after(0, time.Second)
	if rejected != 0 || len(items) != 3 {
		t.Fatalf("%d items, %d rejected; want 3 accepted", len(items), rejected)
	}
	for i, want := range []struct{ kind, text string }{
		{"slack", "syn_flood on acme 198.18.10.0/24 inbound"},
		{"pagerduty", "dedup_key=an-42"},
		{"email", "Subject: [PacketWorks] Possible attack — é"},
	} {
		it := items[i]
		if it.Kind != want.kind || len(it.Incidents) != 1 || it.Incidents[0] != "an-42" || !strings.Contains(it.Text, want.text) {
			t.Errorf("item %d: %+v, want kind %s naming an-42 with %q", i, it, want.kind, want.text)
		}
	}
	// What the real Slack would refuse is refused, and counted.
	resp, err := srv.Client().Post(srv.URL+"/slack/x", "application/json", strings.NewReader(`{"text":"x","blocks":[{"type":"bogus"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if _, rej := b.after(3, 10*time.Millisecond); resp.StatusCode != 400 || rej != 1 {
		t.Errorf("invalid Slack payload: status %d, rejected %d", resp.StatusCode, rej)
	}
}
