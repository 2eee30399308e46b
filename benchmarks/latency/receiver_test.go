package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
)

// The receiver must understand what the alerter's own notifiers send: the
// test drives the real Slack, PagerDuty and webhook notifiers against it.
func TestReceiverReadsAlerterPayloads(t *testing.T) {
	secret := []byte("s3cret")
	rcv, err := startReceiver(secret)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.close()

	firing := &incident.Incident{ID: "a1b2", State: incident.Open, Customer: "lat-1", Subnet: "198.18.101.0/24", Direction: "inbound",
		Class: "syn_flood", Severity: "critical", MaxSeverity: "critical", Metric: "pps_syn", Unit: "pps", Observed: 2e5, Expected: 600,
		StartedAt: t0, UpdatedAt: t0}
	ended := &incident.Incident{ID: "c3d4", State: incident.Resolved, Customer: "lat-2", Subnet: "198.18.102.0/24", Direction: "inbound",
		Class: "udp_flood", Severity: "critical", StartedAt: t0, UpdatedAt: t0, EndedAt: t0.Add(time.Minute), ResolvedBy: "detector"}
	msg := &notify.Message{Receiver: "r", GroupKey: "g", Firing: []*incident.Incident{firing}, Resolved: []*incident.Incident{ended}}
	ctx := context.Background()
	before := time.Now()
	for _, n := range []notify.Notifier{
		&notify.Slack{URL: rcv.url + "/slack/T/B/x"},
		&notify.PagerDuty{URL: rcv.url + "/v2/enqueue", RoutingKey: "k"},
		&notify.Webhook{URL: rcv.url + "/webhook", Secret: secret},
	} {
		if err := n.Notify(ctx, msg); err != nil {
			t.Fatalf("%s: %v", n.Kind(), err)
		}
	}
	ms, reqs, refused := rcv.snapshot()
	if len(refused) > 0 {
		t.Fatalf("refused: %v", refused)
	}
	if reqs["slack"] != 1 || reqs["pagerduty"] != 2 || reqs["webhook"] != 1 {
		t.Errorf("requests = %v; want slack 1, pagerduty 2 (one event per incident), webhook 1", reqs)
	}
	var got []string
	for _, m := range ms {
		if m.At.Before(before) || m.At.After(time.Now()) {
			t.Errorf("%s mention stamped %v, outside the test", m.Receiver, m.At)
		}
		got = append(got, strings.Join([]string{m.Receiver, m.ID, m.Customer, m.Subnet, map[bool]string{true: "resolved", false: "firing"}[m.Resolved]}, " "))
	}
	sort.Strings(got)
	want := []string{
		"pagerduty a1b2 lat-1 198.18.101.0/24 firing",
		"pagerduty c3d4   resolved", // a resolve event carries only the dedup key
		"slack a1b2 lat-1 198.18.101.0/24 firing",
		"slack c3d4   resolved",
		"webhook a1b2 lat-1 198.18.101.0/24 firing",
		"webhook c3d4 lat-2 198.18.102.0/24 resolved",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("mentions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestReceiverRefusesBadRequests(t *testing.T) {
	rcv, err := startReceiver([]byte("right"))
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.close()
	msg := &notify.Message{Firing: []*incident.Incident{{ID: "x", Customer: "c", Subnet: "198.18.1.0/24", Severity: "critical"}}}
	for _, tc := range []struct {
		name string
		send func() error
	}{
		{"webhook signed with another secret", func() error {
			return (&notify.Webhook{URL: rcv.url + "/webhook", Secret: []byte("wrong")}).Notify(context.Background(), msg)
		}},
		{"slack payload that is not Block Kit", func() error { return post(rcv.url+"/slack/T/B/x", `{"blocks": [{"type": "bogus"}]}`) }},
		{"pagerduty event with an unknown field", func() error {
			return post(rcv.url+"/v2/enqueue", `{"routing_key":"k","event_action":"trigger","nope":1}`)
		}},
		{"webhook body naming no incident", func() error { return post(rcv.url+"/webhook", `{"firing": []}`) }},
	} {
		if err := tc.send(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	ms, _, refused := rcv.snapshot()
	if len(ms) != 0 || len(refused) != 4 {
		t.Errorf("mentions %v, refused %v; want none and 4", ms, refused)
	}
}

func post(url, body string) error {
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}
