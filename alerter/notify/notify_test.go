package notify_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/incident"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/notify/notifytest"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/secret"
)

var links = notify.Links{ConsoleURL: "https://console.example.net/incidents/{id}", QueryURL: "https://console.example.net/query?sql={sql}"}

func sample(id, sev string) *incident.Incident {
	t0 := time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC)
	return &incident.Incident{ID: id, State: incident.Open, Customer: "acme", Subnet: "203.0.113.0/24", Direction: "inbound",
		Class: "syn_flood", Severity: sev, MaxSeverity: sev, StartedAt: t0, UpdatedAt: t0.Add(3 * time.Minute),
		Metric: "pps_syn", Unit: "pps", Observed: 2_000_000, Expected: 10_000, Score: 42.5, PeakBPS: 1_200_000_000, PeakPPS: 2_100_000,
		Fingerprint: incident.Fingerprint{
			TopSources:  []incident.TopItem{{Key: "198.51.100.7", Share: 0.4}, {Key: "198.51.100.9", Share: 0.2}},
			TopDstPorts: []incident.TopItem{{Key: "443", Share: 0.95}}, TopProtocols: []incident.TopItem{{Key: "tcp", Share: 1}},
			DistinctSources: 5400,
			Mitigation: incident.Mitigation{DstPrefix: "203.0.113.10/32", Protocols: []uint32{6}, DstPorts: []uint32{443},
				TCPFlags: "syn&!ack", Action: "rate-limit 10000000"}}}
}

func resolved(in *incident.Incident) *incident.Incident {
	in.State = incident.Resolved
	in.EndedAt = in.StartedAt.Add(25 * time.Minute)
	in.ResolvedBy, in.Reason = "detector", "below threshold for 3 windows"
	return in
}

func TestSlackPayloadContract(t *testing.T) {
	s := notifytest.NewSlack(t)
	n := &notify.Slack{URL: s.URL, Links: links}
	huge := sample("big", "critical")
	for i := range 200 {
		huge.Fingerprint.TopSources = append(huge.Fingerprint.TopSources, incident.TopItem{Key: strings.Repeat("x", 100) + string(rune('a'+i%26))})
	}
	huge.Fingerprint.Mitigation.Description = strings.Repeat("very long rule ", 400)
	many := &notify.Message{Receiver: "noc", GroupKey: "g"}
	for i := range 8 {
		many.Firing = append(many.Firing, sample("inc-"+string(rune('a'+i)), "warning"))
	}
	cases := []struct {
		name string
		m    *notify.Message
		want []string
	}{
		{"firing", &notify.Message{Firing: []*incident.Incident{sample("inc-1", "critical")}},
			[]string{"[CRITICAL] syn_flood on acme 203.0.113.0/24 inbound", "2.00 Mpps", "10.0 kpps", "200x expected",
				"198.51.100.7 (40%)", "rate-limit 10000000", "FROM flowsentry.flows", "customer = 'acme'",
				"https://console.example.net/incidents/inc-1", "query?sql=SELECT", "<!date^1746515289^"}},
		{"resolved follow-up", &notify.Message{Resolved: []*incident.Incident{resolved(sample("inc-1", "critical"))}},
			[]string{"RESOLVED [CRITICAL] syn_flood", "after 25m", "below threshold for 3 windows"}},
		{"oversized texts are cut to the limits", &notify.Message{Firing: []*incident.Incident{huge}}, []string{"…"}},
		{"large group lists the rest", many, []string{"…and 3 more in this group", "inc-h"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Messages())
			if err := n.Notify(context.Background(), tc.m); err != nil {
				t.Fatalf("notify: %v (problems %v)", err, s.Problems())
			}
			msgs := s.Messages()
			if len(msgs) != before+1 {
				t.Fatalf("messages %d", len(msgs))
			}
			raw, _ := json.Marshal(msgs[len(msgs)-1])
			for _, w := range tc.want {
				if !strings.Contains(string(raw), w) && !strings.Contains(string(raw), jsonEsc(w)) {
					t.Errorf("message lacks %q:\n%s", w, raw)
				}
			}
		})
	}
	if p := s.Problems(); len(p) > 0 {
		t.Fatalf("contract problems: %v", p)
	}
}

func jsonEsc(s string) string { b, _ := json.Marshal(s); return strings.Trim(string(b), `"`) }

func TestValidateSlackCatchesBadPayloads(t *testing.T) {
	for _, bad := range []string{
		`{"text":"x","blocks":[{"type":"header","text":{"type":"mrkdwn","text":"x"}}]}`,
		`{"text":"x","blocks":[{"type":"section"}]}`,
		`{"text":"x","blocks":[{"type":"banner","text":{"type":"mrkdwn","text":"x"}}]}`,
		`{"text":"x","blocks":[{"type":"section","text":{"type":"mrkdwn","text":"` + strings.Repeat("a", 3001) + `"}}]}`,
		`{"text":"","blocks":[{"type":"divider"}]}`,
	} {
		if p := notifytest.ValidateSlack([]byte(bad)); len(p) == 0 {
			t.Errorf("accepted %s", bad[:min(80, len(bad))])
		}
	}
}

func TestPagerDutyContract(t *testing.T) {
	pd := notifytest.NewPagerDuty(t)
	n := &notify.PagerDuty{URL: pd.URL + "/v2/enqueue", RoutingKey: "R0UT1NGKEY0000000000000000000000", Links: links,
		SeverityMap: map[string]string{"warning": "error"}}
	long := sample("x", "critical")
	long.ID = strings.Repeat("i", 300)
	long.Class = strings.Repeat("c", 2000)
	ctx := context.Background()
	steps := []struct {
		m       *notify.Message
		opened  int
		open    int
		sev     string
		action  string
		summary string
	}{
		{&notify.Message{Firing: []*incident.Incident{sample("inc-1", "critical")}}, 1, 1, "critical", "trigger", "[CRITICAL] syn_flood on acme 203.0.113.0/24 inbound: pps_syn 2.00 Mpps vs 10.0 kpps expected"},
		// A re-sent trigger (crash before the outcome was recorded) updates, never opens a second incident.
		{&notify.Message{Firing: []*incident.Incident{sample("inc-1", "critical")}}, 1, 1, "critical", "trigger", ""},
		{&notify.Message{Firing: []*incident.Incident{sample("inc-2", "warning")}}, 2, 2, "error", "trigger", ""},
		{&notify.Message{Resolved: []*incident.Incident{resolved(sample("inc-1", "critical"))}}, 2, 1, "", "resolve", ""},
		{&notify.Message{Firing: []*incident.Incident{long}}, 3, 2, "critical", "trigger", ""},
	}
	for i, st := range steps {
		if err := n.Notify(ctx, st.m); err != nil {
			t.Fatalf("step %d: %v %v", i, err, pd.Problems())
		}
		evs := pd.Events()
		ev := evs[len(evs)-1]
		opened, _, open := pd.Incidents()
		if opened != st.opened || open != st.open || ev.EventAction != st.action {
			t.Fatalf("step %d: opened %d open %d action %s", i, opened, open, ev.EventAction)
		}
		if st.action == "trigger" {
			pl := ev.Payload
			if pl.Severity != st.sev || pl.Source != "203.0.113.0/24" || pl.Group != "acme" || pl.Component != "pps_syn" ||
				pl.CustomDetails["incident_id"] == nil || pl.Timestamp != "2025-05-06T07:08:09Z" || ev.ClientURL == "" || len(ev.Links) != 2 {
				t.Fatalf("step %d: payload %+v", i, pl)
			}
			if st.summary != "" && !strings.HasPrefix(pl.Summary, st.summary) {
				t.Fatalf("summary %q", pl.Summary)
			}
		}
	}
	if last := pd.Events()[len(pd.Events())-1]; len(last.DedupKey) != 64 || len([]rune(last.Payload.Summary)) > 1024 {
		t.Fatalf("long id/summary not bounded: %d %d", len(last.DedupKey), len(last.Payload.Summary))
	}
	if p := pd.Problems(); len(p) > 0 {
		t.Fatal(p)
	}
	if _, p := notifytest.ValidatePagerDuty([]byte(`{"routing_key":"k","event_action":"trigger","payload":{"summary":"s","source":"x","severity":"fatal"}}`)); len(p) == 0 {
		t.Fatal("validator accepted severity fatal")
	}
	// A bad routing key is a permanent error, not retried.
	pd.Fail(http.StatusBadRequest)
	err := n.Notify(ctx, &notify.Message{Firing: []*incident.Incident{sample("inc-9", "critical")}})
	if err == nil || notify.IsRetryable(err) {
		t.Fatalf("400 must be permanent: %v", err)
	}
}

func TestWebhookSigned(t *testing.T) {
	h := notifytest.NewWebhook(t, "s3cret")
	n := &notify.Webhook{URL: h.URL, Secret: []byte("s3cret"), Links: links}
	m := &notify.Message{Receiver: "soc", GroupKey: "0{}", Firing: []*incident.Incident{sample("inc-1", "critical")},
		Resolved: []*incident.Incident{resolved(sample("inc-0", "warning"))}}
	if err := n.Notify(context.Background(), m); err != nil {
		t.Fatal(err, h.Problems())
	}
	var got notify.WebhookBody
	if err := json.Unmarshal(h.Bodies()[0], &got); err != nil {
		t.Fatal(err)
	}
	if got.Version != "1" || got.Status != "firing" || got.Firing[0].ID != "inc-1" || got.Resolved[0].ID != "inc-0" ||
		got.Links["inc-1"] == "" || h.Headers()[0].Get(notify.HeaderDelivery) == "" {
		t.Fatalf("body %+v", got)
	}
	// Wrong secret: the receiver refuses, and that is permanent.
	bad := &notify.Webhook{URL: h.URL, Secret: []byte("wrong")}
	if err := bad.Notify(context.Background(), m); err == nil || notify.IsRetryable(err) {
		t.Fatalf("wrong secret: %v", err)
	}
	body := []byte(`{"a":1}`)
	hdr := http.Header{}
	old := time.Now().Add(-time.Hour)
	hdr.Set(notify.HeaderTimestamp, "1")
	hdr.Set(notify.HeaderSignature, notify.Sign([]byte("k"), "1", body))
	if err := notify.Verify([]byte("k"), hdr, body, old, 5*time.Minute); err == nil {
		t.Fatal("stale timestamp accepted")
	}
	ts := time.Now().Unix()
	hdr.Set(notify.HeaderTimestamp, itoa(ts))
	hdr.Set(notify.HeaderSignature, notify.Sign([]byte("k"), itoa(ts), body))
	if err := notify.Verify([]byte("k"), hdr, body, time.Now(), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := notify.Verify([]byte("k"), hdr, []byte(`{"a":2}`), time.Now(), 5*time.Minute); err == nil {
		t.Fatal("tampered body accepted")
	}
}

func itoa(v int64) string { b, _ := json.Marshal(v); return string(b) }

func fastRetry() notify.Retry {
	return notify.Retry{InitialBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxElapsed: 10 * time.Second,
		MaxRetryAfter: 5 * time.Second}
}

func TestDeliver(t *testing.T) {
	msg := &notify.Message{Firing: []*incident.Incident{sample("inc-1", "critical")}}
	cases := []struct {
		name       string
		fail       []int
		retryAfter string
		retry      notify.Retry
		wantErr    bool
		wantReqs   int
		minTime    time.Duration
	}{
		{"receiver down for a while then back: delivered once", []int{503, 502, 500, 503}, "", fastRetry(), false, 5, 0},
		{"429 with Retry-After is honoured", []int{429}, "1", fastRetry(), false, 2, time.Second},
		{"permanent error: one attempt", []int{400}, "", fastRetry(), true, 1, 0},
		{"gives up after max_attempts", []int{503, 503, 503, 503}, "", func() notify.Retry { r := fastRetry(); r.MaxAttempts = 3; return r }(), true, 3, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := notifytest.NewSlack(t)
			s.RetryAfter = tc.retryAfter
			s.Fail(tc.fail...)
			n := &notify.Slack{URL: s.URL}
			var attempts []notify.Attempt
			start := time.Now()
			err := notify.Deliver(context.Background(), tc.retry, nil, func(ctx context.Context) error { return n.Notify(ctx, msg) },
				func(a notify.Attempt) { attempts = append(attempts, a) })
			if (err != nil) != tc.wantErr || (err != nil && !errors.Is(err, notify.ErrGaveUp)) {
				t.Fatalf("err %v", err)
			}
			if s.Requests() != tc.wantReqs || len(attempts) != tc.wantReqs {
				t.Fatalf("requests %d attempts %d, want %d", s.Requests(), len(attempts), tc.wantReqs)
			}
			if !tc.wantErr && len(s.Messages()) != 1 {
				t.Fatalf("delivered %d times", len(s.Messages()))
			}
			if el := time.Since(start); el < tc.minTime {
				t.Fatalf("took %s, Retry-After asked %s", el, tc.minTime)
			}
			if !attempts[len(attempts)-1].Final {
				t.Fatal("last attempt not final")
			}
		})
	}
}

func TestBackoffGrowsWithJitter(t *testing.T) {
	r := notify.Retry{InitialBackoff: 100 * time.Millisecond, MaxBackoff: time.Second}
	seen := map[time.Duration]bool{}
	for n := 1; n <= 6; n++ {
		ceil := min(100*time.Millisecond<<(n-1), time.Second)
		for range 20 {
			d := r.Backoff(n)
			if d < ceil/2 || d > ceil {
				t.Fatalf("attempt %d: %s outside [%s, %s]", n, d, ceil/2, ceil)
			}
			seen[d] = true
		}
	}
	if len(seen) < 20 {
		t.Fatalf("no jitter: %d distinct waits", len(seen))
	}
}

func TestLimiter(t *testing.T) {
	l := notify.NewLimiter(600, 1) // 10 per second
	start := time.Now()
	for range 6 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	if el := time.Since(start); el < 450*time.Millisecond || el > 2*time.Second {
		t.Fatalf("6 tokens at 10/s took %s", el)
	}
	l.Delay(300 * time.Millisecond)
	start = time.Now()
	_ = l.Wait(context.Background())
	if el := time.Since(start); el < 250*time.Millisecond {
		t.Fatalf("Delay not honoured: %s", el)
	}
	if notify.NewLimiter(0, 1) != nil {
		t.Fatal("0 per minute should be unlimited")
	}
}

type directory map[string]*inventory.Customer

func (d directory) Customer(id string) *inventory.Customer { return d[id] }

func TestCustomerMailAndWebhook(t *testing.T) {
	relay := notifytest.NewSMTP(t)
	hook := notifytest.NewWebhook(t, "cust-secret")
	t.Setenv("ACME_HOOK_URL", hook.URL)
	t.Setenv("ACME_HOOK_SECRET", "cust-secret")
	dir := directory{
		"acme": {ID: "acme", Name: "ACME Corp", Contacts: inventory.Contacts{Emails: []string{"noc@acme.example", "cto@acme.example"},
			WebhookURL: secret.Ref{Env: "ACME_HOOK_URL"}, WebhookSecret: secret.Ref{Env: "ACME_HOOK_SECRET"}},
			Notify: inventory.Notify{Classes: []string{"syn_flood", "udp_flood"}, MinSeverity: "critical"}},
		"beta": {ID: "beta", Contacts: inventory.Contacts{Emails: []string{"ops@beta.example"}}},
		"mute": {ID: "mute"},
	}
	c := &notify.Customer{Directory: dir, UseWebhook: true, Company: "PacketWorks",
		NOC:  notify.NOC{Name: "PacketWorks NOC", Phone: "+44 20 7946 0000", Email: "noc@packetworks.example"},
		Mail: &notify.SMTP{Addr: relay.Addr, From: "PacketWorks NOC <alerts@packetworks.example>", TLS: &tls.Config{RootCAs: relay.CA, ServerName: "localhost"}}}
	policy := []struct {
		cust, class, sev string
		want             bool
		reason           string
	}{
		{"acme", "syn_flood", "critical", true, ""},
		{"acme", "syn_flood", "warning", false, "min_severity"},
		{"acme", "scan", "critical", false, "notify.classes"},
		{"beta", "scan", "warning", true, ""},
		{"beta", "scan", "info", false, "min_severity warning"}, // default policy
		{"mute", "scan", "critical", false, "no contact"},
		{"ghost", "scan", "critical", false, "not in the inventory"},
	}
	for _, p := range policy {
		in := sample("x", p.sev)
		in.Customer, in.Class = p.cust, p.class
		ok, why := c.Wants(in)
		if ok != p.want || !strings.Contains(why, p.reason) {
			t.Errorf("%+v: got %v %q", p, ok, why)
		}
	}
	ctx := context.Background()
	in := sample("inc-42", "critical")
	if err := c.Notify(ctx, &notify.Message{Receiver: "customers", Firing: []*incident.Incident{in}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Notify(ctx, &notify.Message{Receiver: "customers", Resolved: []*incident.Incident{resolved(sample("inc-42", "critical"))}}); err != nil {
		t.Fatal(err)
	}
	mails := relay.Mails()
	if len(mails) != 2 {
		t.Fatalf("mails %d", len(mails))
	}
	m := mails[0]
	if !m.TLS || m.From != "alerts@packetworks.example" || strings.Join(m.To, ",") != "noc@acme.example,cto@acme.example" {
		t.Fatalf("envelope %+v", m)
	}
	data := unQP(m.Data)
	for _, w := range []string{"Subject: [PacketWorks] Possible attack on your network 203.0.113.0/24 (syn flood)",
		"Hello ACME Corp", "What we saw", "a flood of TCP connection requests (a SYN flood) towards your addresses 203.0.113.0/24",
		"What we are doing", "How to reach us", "+44 20 7946 0000", "reference inc-42", "Message-ID: <inc-42.firing@flowsentry>",
		"Content-Type: text/plain; charset=utf-8", "From: PacketWorks NOC <alerts@packetworks.example>"} {
		if !strings.Contains(data, w) {
			t.Errorf("mail lacks %q:\n%s", w, data)
		}
	}
	if d := unQP(mails[1].Data); !strings.Contains(d, "Resolved: unusual traffic towards 203.0.113.0/24 has ended") || !strings.Contains(d, "(25m)") {
		t.Errorf("resolve mail:\n%s", d)
	}
	bodies := hook.Bodies()
	if len(bodies) != 2 || len(hook.Problems()) > 0 {
		t.Fatalf("customer webhook %d %v", len(bodies), hook.Problems())
	}
	var wb notify.CustomerWebhookBody
	_ = json.Unmarshal(bodies[0], &wb)
	if wb.Customer != "acme" || wb.Status != "firing" || wb.Incident.ID != "inc-42" || !strings.Contains(wb.Text, "What we saw") {
		t.Fatalf("webhook body %+v", wb)
	}
	if strings.Contains(string(bodies[0]), "score") {
		t.Fatal("customer view leaks internal fields")
	}
}

func TestCustomerRetryDoesNotResendMail(t *testing.T) {
	relay := notifytest.NewSMTP(t)
	hook := notifytest.NewWebhook(t, "k")
	t.Setenv("H_URL", hook.URL)
	t.Setenv("H_KEY", "k")
	dir := directory{"acme": {ID: "acme", Contacts: inventory.Contacts{Emails: []string{"a@acme.example"},
		WebhookURL: secret.Ref{Env: "H_URL"}, WebhookSecret: secret.Ref{Env: "H_KEY"}}}}
	c := &notify.Customer{Directory: dir, UseWebhook: true,
		Mail: &notify.SMTP{Addr: relay.Addr, From: "a@b.example", TLS: &tls.Config{RootCAs: relay.CA, ServerName: "localhost"}}}
	hook.Fail(503, 503)
	m := &notify.Message{Receiver: "customers", Firing: []*incident.Incident{sample("inc-1", "critical")}}
	err := notify.Deliver(context.Background(), fastRetry(), nil, func(ctx context.Context) error { return c.Notify(ctx, m) }, func(notify.Attempt) {})
	if err != nil {
		t.Fatal(err)
	}
	if len(relay.Mails()) != 1 || len(hook.Bodies()) != 1 {
		t.Fatalf("mails %d webhooks %d, want 1 and 1", len(relay.Mails()), len(hook.Bodies()))
	}
	// An SMTP 451 is retryable.
	relay.FailRcpt = 1
	m2 := &notify.Message{Receiver: "customers", Firing: []*incident.Incident{sample("inc-2", "critical")}}
	err = c.Notify(context.Background(), m2)
	if err == nil || !notify.IsRetryable(err) {
		t.Fatalf("451 should be retryable: %v", err)
	}
}

func unQP(s string) string {
	s = strings.ReplaceAll(s, "=\r\n", "")
	s = strings.ReplaceAll(s, "=3D", "=")
	return strings.ReplaceAll(s, "\r\n", "\n")
}

func TestReceiverConfigValidate(t *testing.T) {
	cases := []struct {
		c    notify.ReceiverConfig
		want []string
	}{
		{notify.ReceiverConfig{Name: "Bad Name"}, []string{"receivers[0].name", "set exactly one"}},
		{notify.ReceiverConfig{Name: "s", Slack: &notify.SlackConfig{}}, []string{"receivers[0].slack.webhook_url"}},
		{notify.ReceiverConfig{Name: "p", PagerDuty: &notify.PagerDutyConfig{RoutingKey: secret.Ref{Env: "X"},
			SeverityMap: map[string]string{"critical": "fatal"}, URL: "ftp://x"}},
			[]string{"receivers[0].pagerduty.severity_map.critical", "receivers[0].pagerduty.url"}},
		{notify.ReceiverConfig{Name: "w", Webhook: &notify.WebhookConfig{URL: "nope"}}, []string{"receivers[0].webhook.url", "receivers[0].webhook.secret"}},
		{notify.ReceiverConfig{Name: "c", Customer: &notify.CustomerConfig{SMTP: &notify.SMTPConfig{Addr: "x", StartTLS: "maybe"}}},
			[]string{"receivers[0].customer.smtp.addr", "receivers[0].customer.smtp.from", "receivers[0].customer.smtp.starttls"}},
	}
	for _, tc := range cases {
		err := tc.c.Validate("receivers[0]")
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("want %q in %v", w, err)
			}
		}
	}
}
