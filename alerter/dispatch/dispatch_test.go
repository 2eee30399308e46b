package dispatch

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/audit"
	"github.com/packetworks/flowsentry/alerter/notify"
	"github.com/packetworks/flowsentry/alerter/notify/notifytest"
	"github.com/packetworks/flowsentry/alerter/route"
	"github.com/packetworks/flowsentry/alerter/state"
	"github.com/packetworks/flowsentry/schemas/config"
	"github.com/packetworks/flowsentry/schemas/inventory"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type recorder struct {
	mu   sync.Mutex
	rows []audit.Row
}

func (r *recorder) Record(row audit.Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}
func (r *recorder) find(f func(audit.Row) bool) []audit.Row {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Row
	for _, x := range r.rows {
		if f(x) {
			out = append(out, x)
		}
	}
	return out
}

// The routing every test uses: the NOC's Slack hears everything grouped by
// customer; critical incidents also page PagerDuty.
const routing = `
receiver: slack
group_by: [customer]
group_wait: 30s
group_interval: 5m
repeat_interval: 4h
routes:
  - matchers: ["severity=critical"]
    receiver: pagerduty
    group_by: [customer, subnet]
    continue: true
  - receiver: slack
`

type harness struct {
	t      *testing.T
	e      *Engine
	clock  *clock
	slack  *notifytest.Slack
	pd     *notifytest.PagerDuty
	audit  *recorder
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan struct{}
	opts   Options
}

type setup struct {
	routing  string
	inhibit  []route.InhibitConfig
	silences []*route.Silence
	store    string
	extra    []*notify.Receiver
	slack    *notifytest.Slack
	pd       *notifytest.PagerDuty
	clock    *clock
	retry    *notify.Retry
}

func fastRetry() notify.Retry {
	return notify.Retry{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, MaxElapsed: 10 * time.Second}
}

func newHarness(t *testing.T, s setup) *harness {
	t.Helper()
	if s.routing == "" {
		s.routing = routing
	}
	if s.slack == nil {
		s.slack = notifytest.NewSlack(t)
	}
	if s.pd == nil {
		s.pd = notifytest.NewPagerDuty(t)
	}
	if s.clock == nil {
		s.clock = &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	}
	retry := fastRetry()
	if s.retry != nil {
		retry = *s.retry
	}
	var rc route.Config
	if err := config.Decode([]byte(s.routing), &rc); err != nil {
		t.Fatal(err)
	}
	rcvs := []*notify.Receiver{
		{Name: "slack", Notifier: &notify.Slack{URL: s.slack.URL}, Retry: retry, SendResolved: true},
		{Name: "pagerduty", Notifier: &notify.PagerDuty{URL: s.pd.URL + "/v2/enqueue", RoutingKey: "key"}, Retry: retry, SendResolved: true},
	}
	rcvs = append(rcvs, s.extra...)
	var names []string
	for _, r := range rcvs {
		names = append(names, r.Name)
	}
	tree, err := route.Compile(rc, names)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := route.CompileInhibitRules(s.inhibit)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, clock: s.clock, slack: s.slack, pd: s.pd, audit: &recorder{}, reg: prometheus.NewRegistry()}
	h.opts = Options{Config: Config{ResolveAfter: 15 * time.Minute, Retention: 24 * time.Hour, Tick: time.Hour},
		Tree: tree, Inhibit: rules, Receivers: rcvs, Silences: s.silences, Audit: h.audit, Registerer: h.reg, Now: s.clock.Now,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if s.store != "" {
		h.opts.Store = &state.File{Path: s.store}
		h.opts.DeadLetterPath = filepath.Join(filepath.Dir(s.store), "deadletter.jsonl")
	}
	h.e, err = New(h.opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan struct{})
	go func() { _ = h.e.Run(ctx); close(h.done) }()
	t.Cleanup(h.stop)
	return h
}

func (h *harness) stop() {
	h.cancel()
	<-h.done
}

func event(id string, kind pb.AnomalyEvent_Kind, seq uint32, customer, subnet, class string, sev pb.Severity) *pb.AnomalyEvent {
	return &pb.AnomalyEvent{Id: id, Kind: kind, Seq: seq, Customer: customer, Subnet: subnet, Class: class, Severity: sev,
		Direction: pb.Direction_DIRECTION_INBOUND, Metric: "pps", Unit: "pps", Observed: 1e6, Expected: 1e4, Score: 30,
		StartedAtNs: uint64(time.Date(2025, 6, 1, 11, 59, 0, 0, time.UTC).UnixNano()), Reason: "below threshold"}
}

func start(id, cust, subnet string, sev pb.Severity) *pb.AnomalyEvent {
	return event(id, pb.AnomalyEvent_START, 0, cust, subnet, "syn_flood", sev)
}

func end(id, cust, subnet string, seq uint32, sev pb.Severity) *pb.AnomalyEvent {
	return event(id, pb.AnomalyEvent_END, seq, cust, subnet, "syn_flood", sev)
}

const crit, warn = pb.Severity_SEVERITY_CRITICAL, pb.Severity_SEVERITY_WARNING

// advance moves the clock and runs one tick.
func (h *harness) advance(d time.Duration) {
	h.clock.Add(d)
	h.e.Tick()
}

func eventually(t *testing.T, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// quiet checks that nothing more arrives.
func quiet(t *testing.T, h *harness, slack, pd int) {
	t.Helper()
	time.Sleep(100 * time.Millisecond)
	if n := len(h.slack.Messages()); n != slack {
		t.Fatalf("slack messages %d, want %d", n, slack)
	}
	if n := len(h.pd.Events()); n != pd {
		t.Fatalf("pagerduty events %d, want %d", n, pd)
	}
}

func settledSoon(t *testing.T, tk *Ticket) {
	t.Helper()
	select {
	case <-tk.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("ticket never settled")
	}
}

func slackText(m notify.SlackMessage) string { b, _ := json.Marshal(m); return string(b) }

func TestTriggerThenResolve(t *testing.T) {
	h := newHarness(t, setup{})
	tk := h.e.Handle(start("inc-1", "acme", "203.0.113.0/24", crit))
	if tk.Settled() {
		t.Fatal("ticket settled before any delivery")
	}
	h.advance(29 * time.Second)
	quiet(t, h, 0, 0) // group_wait not over
	h.advance(time.Second)
	eventually(t, "first notifications", func() bool { return len(h.slack.Messages()) == 1 && len(h.pd.Events()) == 1 })
	settledSoon(t, tk)
	if ev := h.pd.Events()[0]; ev.EventAction != "trigger" || ev.DedupKey != "inc-1" || ev.Payload.Severity != "critical" {
		t.Fatalf("pd event %+v", ev)
	}
	if !strings.Contains(slackText(h.slack.Messages()[0]), "[CRITICAL] syn_flood on acme 203.0.113.0/24 inbound") {
		t.Fatalf("slack: %s", slackText(h.slack.Messages()[0]))
	}
	// Updates change nothing to tell.
	up := h.e.Handle(event("inc-1", pb.AnomalyEvent_UPDATE, 1, "acme", "203.0.113.0/24", "syn_flood", crit))
	settledSoon(t, up)
	tk = h.e.Handle(end("inc-1", "acme", "203.0.113.0/24", 2, crit))
	h.advance(5 * time.Minute)
	eventually(t, "resolve notifications", func() bool { return len(h.slack.Messages()) == 2 && len(h.pd.Events()) == 2 })
	settledSoon(t, tk)
	if ev := h.pd.Events()[1]; ev.EventAction != "resolve" || ev.DedupKey != "inc-1" {
		t.Fatalf("pd resolve %+v", ev)
	}
	if !strings.Contains(slackText(h.slack.Messages()[1]), "RESOLVED") {
		t.Fatal("no resolve follow-up on Slack")
	}
	opened, resolved, open := h.pd.Incidents()
	if opened != 1 || resolved != 1 || open != 0 {
		t.Fatalf("pagerduty incidents %d/%d/%d", opened, resolved, open)
	}
	h.advance(5 * time.Minute)
	quiet(t, h, 2, 2)
	if p := append(h.slack.Problems(), h.pd.Problems()...); len(p) > 0 {
		t.Fatal(p)
	}
	if rows := h.audit.find(func(r audit.Row) bool { return r.Outcome == "delivered" && r.LatencyMs > 0 }); len(rows) != 4 {
		t.Fatalf("delivered audit rows with latency: %d", len(rows))
	}
	if rows := h.audit.find(func(r audit.Row) bool { return r.Record == "incident" }); len(rows) != 2 {
		t.Fatalf("incident audit rows %d", len(rows))
	}
	if v := testutil.ToFloat64(h.e.m.notifications.WithLabelValues("pagerduty", "pagerduty", "delivered")); v != 2 {
		t.Fatalf("metric delivered %v", v)
	}
}

func TestGrouping(t *testing.T) {
	h := newHarness(t, setup{})
	for i, sub := range []string{"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"} {
		h.e.Handle(start("inc-"+string(rune('a'+i)), "acme", sub, warn))
		h.advance(5 * time.Second)
	}
	h.e.Handle(start("other", "beta", "10.9.0.0/24", warn))
	h.advance(15 * time.Second) // acme's group_wait is over, beta's not
	eventually(t, "acme group", func() bool { return len(h.slack.Messages()) == 1 })
	msg := slackText(h.slack.Messages()[0])
	for _, s := range []string{"10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"} {
		if !strings.Contains(msg, s) {
			t.Fatalf("grouped message lacks %s", s)
		}
	}
	if strings.Contains(msg, "beta") {
		t.Fatal("beta grouped with acme")
	}
	h.advance(15 * time.Second)
	eventually(t, "beta group", func() bool { return len(h.slack.Messages()) == 2 })
	// A new acme incident waits for the group_interval, then goes alone.
	h.e.Handle(start("inc-d", "acme", "10.0.4.0/24", warn))
	h.advance(time.Minute)
	quiet(t, h, 2, 0)
	h.advance(4 * time.Minute)
	eventually(t, "group interval", func() bool { return len(h.slack.Messages()) == 3 })
	if m := slackText(h.slack.Messages()[2]); !strings.Contains(m, "10.0.4.0/24") || strings.Contains(m, "10.0.1.0/24") {
		t.Fatalf("second acme message should carry only the new incident: %s", m)
	}
}

func TestRepeatInterval(t *testing.T) {
	h := newHarness(t, setup{routing: "receiver: slack\ngroup_wait: 10s\ngroup_interval: 1m\nrepeat_interval: 30m\n"})
	h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", warn))
	h.advance(10 * time.Second)
	eventually(t, "first", func() bool { return len(h.slack.Messages()) == 1 })
	seq := uint32(1)
	for range 29 {
		h.clock.Add(time.Minute)
		h.e.Handle(event("inc-1", pb.AnomalyEvent_UPDATE, seq, "acme", "10.0.0.0/24", "syn_flood", warn))
		seq++
		h.e.Tick()
	}
	quiet(t, h, 1, 0)
	h.advance(time.Minute)
	eventually(t, "repeat", func() bool { return len(h.slack.Messages()) == 2 })
	if !strings.Contains(slackText(h.slack.Messages()[1]), "Still firing") {
		t.Fatal("repeat not marked")
	}
	// Acknowledged incidents are not repeated.
	if _, err := h.e.Acknowledge("inc-1", "alice", "on it"); err != nil {
		t.Fatal(err)
	}
	for range 31 {
		h.clock.Add(time.Minute)
		h.e.Handle(event("inc-1", pb.AnomalyEvent_UPDATE, seq, "acme", "10.0.0.0/24", "syn_flood", warn))
		seq++
		h.e.Tick()
	}
	quiet(t, h, 2, 0)
}

func TestEscalationPagesAgain(t *testing.T) {
	h := newHarness(t, setup{})
	h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", warn))
	h.advance(30 * time.Second)
	eventually(t, "warning", func() bool { return len(h.slack.Messages()) == 1 })
	quiet(t, h, 1, 0)
	tk := h.e.Handle(event("inc-1", pb.AnomalyEvent_UPDATE, 1, "acme", "10.0.0.0/24", "syn_flood", crit))
	h.advance(30 * time.Second) // new PagerDuty group: its group_wait
	eventually(t, "page", func() bool { return len(h.pd.Events()) == 1 })
	h.advance(5 * time.Minute) // Slack group: its group_interval
	eventually(t, "escalated slack", func() bool { return len(h.slack.Messages()) == 2 })
	settledSoon(t, tk)
	if !strings.Contains(slackText(h.slack.Messages()[1]), "[CRITICAL]") {
		t.Fatal("escalation not shown")
	}
}

func TestSilence(t *testing.T) {
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	cfgSilence := &route.Silence{Matchers: []string{"customer=lab"}, StartsAt: c.t.Add(-time.Hour), EndsAt: c.t.Add(time.Hour),
		CreatedBy: "config", Comment: "lab is always noisy"}
	h := newHarness(t, setup{clock: c, silences: []*route.Silence{cfgSilence}})
	s, err := h.e.PutSilence(route.Silence{Matchers: []string{"customer=acme", `subnet=~"10\.0\..*"`},
		StartsAt: c.t, EndsAt: c.t.Add(10 * time.Minute), Comment: "maintenance window CHG-42"}, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if s.CreatedBy != "alice" || s.ID == "" {
		t.Fatalf("silence %+v", s)
	}
	t1 := h.e.Handle(start("muted", "acme", "10.0.0.0/24", crit))
	t2 := h.e.Handle(start("lab", "lab", "10.5.0.0/24", crit))
	t3 := h.e.Handle(start("loud", "acme", "192.0.2.0/24", crit))
	h.advance(30 * time.Second)
	eventually(t, "unsilenced incident", func() bool { return len(h.pd.Events()) == 1 && len(h.slack.Messages()) == 1 })
	settledSoon(t, t1) // silenced counts as settled: the offset may be committed
	settledSoon(t, t2)
	settledSoon(t, t3)
	if h.pd.Events()[0].DedupKey != "loud" {
		t.Fatal("wrong incident paged")
	}
	rows := h.audit.find(func(r audit.Row) bool { return r.Outcome == "silenced" && r.IncidentID == "muted" })
	if len(rows) != 2 || !strings.Contains(rows[0].Error, "maintenance window CHG-42") {
		t.Fatalf("silenced audit rows %+v", rows)
	}
	if _, err := h.e.ExpireSilence("config-0", "bob"); err != ErrReadOnly {
		t.Fatalf("config silence changed through API: %v", err)
	}
	// The window ends: the still-open incident is told at the next interval.
	h.advance(10 * time.Minute)
	eventually(t, "after silence", func() bool { return len(h.pd.Events()) == 2 })
	if h.pd.Events()[1].DedupKey != "muted" {
		t.Fatal("muted incident not paged after the silence")
	}
	quiet(t, h, 2, 2) // lab stays silenced
}

func TestInhibition(t *testing.T) {
	h := newHarness(t, setup{inhibit: []route.InhibitConfig{{
		SourceMatchers: []string{"class=traffic_drop", "scope=customer"},
		TargetMatchers: []string{"class=traffic_drop", "scope=subnet"},
		Equal:          []string{"customer"}}}})
	outage := event("outage", pb.AnomalyEvent_START, 0, "acme", "", "traffic_drop", crit)
	drop1 := event("drop1", pb.AnomalyEvent_START, 0, "acme", "10.0.1.0/24", "traffic_drop", crit)
	drop2 := event("drop2", pb.AnomalyEvent_START, 0, "acme", "10.0.2.0/24", "traffic_drop", crit)
	other := event("other", pb.AnomalyEvent_START, 0, "beta", "10.9.0.0/24", "traffic_drop", crit)
	for _, ev := range []*pb.AnomalyEvent{outage, drop1, drop2, other} {
		h.e.Handle(ev)
	}
	h.advance(30 * time.Second)
	eventually(t, "pages", func() bool { return len(h.pd.Events()) == 2 })
	quiet(t, h, 2, 2)
	keys := map[string]bool{}
	for _, ev := range h.pd.Events() {
		keys[ev.DedupKey] = true
	}
	if !keys["outage"] || !keys["other"] {
		t.Fatalf("paged %v", keys)
	}
	if m := slackText(h.slack.Messages()[0]) + slackText(h.slack.Messages()[1]); strings.Contains(m, "10.0.1.0/24") {
		t.Fatal("inhibited drop reached Slack")
	}
	if rows := h.audit.find(func(r audit.Row) bool { return r.Outcome == "inhibited" }); len(rows) != 4 {
		t.Fatalf("inhibited rows %d", len(rows))
	}
}

func TestReceiverDownThenBackDeliversOnce(t *testing.T) {
	h := newHarness(t, setup{})
	h.slack.Fail(503, 503, 502, 500)
	tk := h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", warn))
	h.advance(30 * time.Second)
	eventually(t, "delivery after outage", func() bool { return len(h.slack.Messages()) == 1 })
	settledSoon(t, tk)
	h.advance(5 * time.Minute)
	quiet(t, h, 1, 0)
	if h.slack.Requests() != 5 {
		t.Fatalf("requests %d, want 4 failures + 1", h.slack.Requests())
	}
	if rows := h.audit.find(func(r audit.Row) bool { return r.Outcome == "retry" }); len(rows) != 4 || rows[3].Attempt != 4 || rows[0].Status != 503 {
		t.Fatalf("retry rows %+v", rows)
	}
}

func TestTooManyRequestsRetryAfter(t *testing.T) {
	h := newHarness(t, setup{})
	h.slack.RetryAfter = "1"
	h.slack.Fail(429)
	h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", warn))
	began := time.Now()
	h.advance(30 * time.Second)
	eventually(t, "delivery after 429", func() bool { return len(h.slack.Messages()) == 1 })
	if el := time.Since(began); el < time.Second {
		t.Fatalf("Retry-After: 1 not honoured (%s)", el)
	}
}

func TestDeadLetter(t *testing.T) {
	dir := t.TempDir()
	h := newHarness(t, setup{store: filepath.Join(dir, "state.json")})
	h.pd.Fail(400)
	tk := h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", crit))
	h.advance(30 * time.Second)
	settledSoon(t, tk) // given up is settled: the offset must not wait forever
	b, err := os.ReadFile(filepath.Join(dir, "deadletter.jsonl"))
	if err != nil || !strings.Contains(string(b), `"receiver":"pagerduty"`) || !strings.Contains(string(b), "inc-1") {
		t.Fatalf("dead letter: %v %s", err, b)
	}
	st, _ := os.Stat(filepath.Join(dir, "deadletter.jsonl"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("dead letter mode %v", st.Mode())
	}
	if v := testutil.ToFloat64(h.e.m.deadLetters.WithLabelValues("pagerduty")); v != 1 {
		t.Fatalf("dead letter metric %v", v)
	}
}

func TestRestartRebuildsWithoutDuplicates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	slack, pd := notifytest.NewSlack(t), notifytest.NewPagerDuty(t)
	c := &clock{t: time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)}
	h := newHarness(t, setup{store: path, slack: slack, pd: pd, clock: c})
	h.e.Handle(start("sent", "acme", "10.0.0.0/24", crit))
	h.advance(30 * time.Second)
	eventually(t, "sent", func() bool { return len(slack.Messages()) == 1 && len(pd.Events()) == 1 })
	eventually(t, "settled", func() bool { return h.e.PendingTickets() == 0 })
	// A second incident arrives but the alerter dies before its group flushes.
	h.e.Handle(start("unsent", "beta", "10.9.0.0/24", crit))
	if err := h.e.Persist(); err != nil {
		t.Fatal(err)
	}
	h.stop()

	h2 := newHarness(t, setup{store: path, slack: slack, pd: pd, clock: c})
	// Kafka re-delivers both uncommitted STARTs.
	t1 := h2.e.Handle(start("sent", "acme", "10.0.0.0/24", crit))
	t2 := h2.e.Handle(start("unsent", "beta", "10.9.0.0/24", crit))
	if !t1.Settled() {
		t.Fatal("re-delivered event of a notified incident should settle at once")
	}
	if t2.Settled() {
		t.Fatal("unsent incident must still be pending")
	}
	h2.advance(30 * time.Second)
	eventually(t, "unsent delivered after restart", func() bool { return len(pd.Events()) == 2 })
	settledSoon(t, t2)
	quiet(t, h2, 2, 2)
	if opened, _, _ := pd.Incidents(); opened != 2 {
		t.Fatalf("pagerduty incidents %d", opened)
	}
	inc, log, err := h2.e.Incident("sent")
	if err != nil || inc.State != "open" || len(log) != 2 {
		t.Fatalf("rebuilt incident %+v %+v %v", inc, log, err)
	}
}

func TestTimeoutResolves(t *testing.T) {
	h := newHarness(t, setup{})
	h.e.Handle(start("inc-1", "acme", "10.0.0.0/24", crit))
	h.advance(30 * time.Second)
	eventually(t, "page", func() bool { return len(h.pd.Events()) == 1 })
	h.advance(16 * time.Minute)
	eventually(t, "resolve on timeout", func() bool { return len(h.pd.Events()) == 2 })
	inc, _, _ := h.e.Incident("inc-1")
	if inc.ResolvedBy != "timeout" || !strings.Contains(inc.Reason, "no event from the detector for 15m0s") {
		t.Fatalf("incident %+v", inc)
	}
	// PagerDuty and Slack are delivered independently: wait for both.
	eventually(t, "slack resolved", func() bool { return len(h.slack.Messages()) == 2 })
	if !strings.Contains(slackText(h.slack.Messages()[1]), "no event from the detector") {
		t.Fatal("reason not shown on Slack")
	}
}

func TestShortIncidentToldOnceAsResolved(t *testing.T) {
	h := newHarness(t, setup{})
	h.e.Handle(start("blip", "acme", "10.0.0.0/24", warn))
	tk := h.e.Handle(end("blip", "acme", "10.0.0.0/24", 1, warn))
	h.advance(30 * time.Second)
	eventually(t, "resolved-only message", func() bool { return len(h.slack.Messages()) == 1 })
	settledSoon(t, tk)
	if !strings.Contains(slackText(h.slack.Messages()[0]), "RESOLVED") {
		t.Fatal("not a resolve message")
	}
	quiet(t, h, 1, 0)
}

func TestInvalidEventsAreCountedNotFatal(t *testing.T) {
	h := newHarness(t, setup{})
	if tk := h.e.Handle(&pb.AnomalyEvent{Kind: pb.AnomalyEvent_START}); !tk.Settled() {
		t.Fatal("invalid event must not hold the offset")
	}
	if v := testutil.ToFloat64(h.e.m.events.WithLabelValues("invalid")); v != 1 {
		t.Fatalf("invalid counter %v", v)
	}
}

type directory map[string]*inventory.Customer

func (d directory) Customer(id string) *inventory.Customer { return d[id] }

func TestCustomerPolicyAndMetrics(t *testing.T) {
	relay := notifytest.NewSMTP(t)
	dir := directory{"acme": {ID: "acme", Name: "ACME", Contacts: inventory.Contacts{Emails: []string{"noc@acme.example"}},
		Notify: inventory.Notify{MinSeverity: "critical"}}}
	cust := &notify.Receiver{Name: "customers", Retry: fastRetry(), SendResolved: true, Notifier: &notify.Customer{Directory: dir,
		Mail: &notify.SMTP{Addr: relay.Addr, From: "noc@isp.example", TLS: &tls.Config{RootCAs: relay.CA, ServerName: "localhost"}}}}
	h := newHarness(t, setup{extra: []*notify.Receiver{cust}, routing: `
receiver: slack
group_wait: 1s
routes:
  - receiver: customers
    group_by: [id]
`})
	wanted := h.e.Handle(start("big", "acme", "10.0.0.0/24", crit))
	unwanted := h.e.Handle(start("small", "acme", "10.0.1.0/24", warn))
	unknown := h.e.Handle(start("stranger", "nobody", "10.0.2.0/24", crit))
	h.advance(time.Second)
	settledSoon(t, wanted)
	settledSoon(t, unwanted)
	settledSoon(t, unknown)
	if m := relay.Mails(); len(m) != 1 || !strings.Contains(m[0].Data, "reference big") {
		t.Fatalf("mails %+v", m)
	}
	skipped := h.audit.find(func(r audit.Row) bool { return r.Outcome == "skipped" })
	if len(skipped) != 2 || !strings.Contains(skipped[0].Error+skipped[1].Error, "min_severity") ||
		!strings.Contains(skipped[0].Error+skipped[1].Error, "not in the inventory") {
		t.Fatalf("skipped rows %+v", skipped)
	}
	// The resolve of a skipped incident is not news either; the wanted one's is.
	h.e.Handle(end("small", "acme", "10.0.1.0/24", 1, warn))
	h.e.Handle(end("big", "acme", "10.0.0.0/24", 1, crit))
	h.advance(5 * time.Minute)
	eventually(t, "resolve mail", func() bool { return len(relay.Mails()) == 2 })
	time.Sleep(100 * time.Millisecond)
	if len(relay.Mails()) != 2 {
		t.Fatalf("mails %d", len(relay.Mails()))
	}
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, n := range []string{"flowsentry_alerter_notifications_total", "flowsentry_alerter_delivery_latency_seconds",
		"flowsentry_alerter_queue_depth", "flowsentry_alerter_incidents", "flowsentry_alerter_pending_events",
		"flowsentry_alerter_events_total"} {
		if !names[n] {
			t.Errorf("metric %s not exposed", n)
		}
	}
}
