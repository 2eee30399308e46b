package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 6, 7, 8, 0, 0, time.UTC)

func at(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		name          string
		in            []float64
		p50, p95, max float64
	}{
		{"one", []float64{4.2}, 4.2, 4.2, 4.2},
		{"two: p50 is the lower (nearest rank)", []float64{9, 3}, 3, 9, 9},
		{"six unsorted: p95 is the max below 20 samples", []float64{5, 1, 9, 3, 7, 2}, 3, 9, 9},
		{"twenty: p95 is the 19th", []float64{20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 10, 19, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := slices.Clone(tc.in)
			s, ok := summarize(in)
			if !ok || s.P50 != tc.p50 || s.P95 != tc.p95 || s.Max != tc.max || s.N != len(tc.in) {
				t.Fatalf("summarize(%v) = %+v, %v; want p50 %g p95 %g max %g", tc.in, s, ok, tc.p50, tc.p95, tc.max)
			}
			if !slices.Equal(in, tc.in) {
				t.Fatalf("summarize sorted its input in place: %v", in)
			}
		})
	}
	if _, ok := summarize(nil); ok {
		t.Fatal("summarize(nil) reported a summary")
	}
}

// Two attacks on two subnets: events and notifications arrive interleaved,
// with noise that must not match (an earlier false START on the same
// subnet, another customer's incident, a resolved message, an UPDATE).
func TestMatch(t *testing.T) {
	attacksRun := []attackRun{
		{Name: "syn", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "inbound", Sent: at(0), Stopped: at(12)},
		{Name: "udp", Customer: "c2", Subnet: "198.18.102.0/24", Direction: "inbound", Sent: at(6), Stopped: at(15)},
		{Name: "lost", Customer: "c3", Subnet: "198.18.103.0/24", Direction: "inbound", Sent: at(12), Stopped: at(20)},
	}
	events := []anomalyEvent{
		{ID: "old", Kind: "START", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "inbound", Published: at(-30), Arrived: at(-29.99)},
		{ID: "out", Kind: "START", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "outbound", Published: at(2), Arrived: at(2.01)},
		{ID: "u", Kind: "START", Class: "udp_flood", Severity: "critical", Customer: "c2", Subnet: "198.18.102.0/24", Direction: "inbound",
			Arrived: at(9.1)}, // no Kafka timestamp: arrival is t1
		{ID: "s", Kind: "START", Class: "syn_flood", Severity: "critical", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "inbound",
			Published: at(9.5), Arrived: at(9.51)},
		{ID: "s", Kind: "UPDATE", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "inbound", Published: at(20)},
		{ID: "s", Kind: "END", Customer: "c1", Subnet: "198.18.101.0/24", Direction: "inbound", Published: at(47)},
	}
	mentions := []mention{
		{Receiver: "slack", At: at(-29), ID: "old", Customer: "c1", Subnet: "198.18.101.0/24"},
		{Receiver: "webhook", At: at(9.8), ID: "u"},
		{Receiver: "slack", At: at(10.2), ID: "s", Customer: "c1", Subnet: "198.18.101.0/24"},
		{Receiver: "pagerduty", At: at(9.9), ID: "s", Customer: "c1", Subnet: "198.18.101.0/24"},
		{Receiver: "slack", At: at(10.5), Customer: "c2", Subnet: "198.18.102.0/24"}, // no id: matched by customer and subnet
		{Receiver: "pagerduty", At: at(48), ID: "s", Resolved: true},
		{Receiver: "slack", At: at(47.5), ID: "s", Resolved: true},
	}
	outs := match(attacksRun, events, mentions)

	syn := outs[0]
	if syn.Incident != "s" || syn.Class != "syn_flood" || !syn.KafkaTimeUsed || !syn.Start.Equal(at(9.5)) {
		t.Errorf("syn START = %q %q kafka=%v %v; want s syn_flood at +9.5 s from the Kafka timestamp", syn.Incident, syn.Class,
			syn.KafkaTimeUsed, syn.Start.Sub(t0))
	}
	if !syn.Notified.Equal(at(9.9)) || syn.NotifiedVia != "pagerduty" {
		t.Errorf("syn first notification = %v via %s; want +9.9 s via pagerduty", syn.Notified.Sub(t0), syn.NotifiedVia)
	}
	if !syn.FirstBy["slack"].Equal(at(10.2)) || len(syn.FirstBy) != 2 {
		t.Errorf("syn per receiver = %v; want slack +10.2 and pagerduty only", syn.FirstBy)
	}
	if !syn.End.Equal(at(47)) || !syn.Resolved.Equal(at(47.5)) || syn.ResolvedVia != "slack" {
		t.Errorf("syn END %v resolved %v via %s; want +47, +47.5 via slack", syn.End.Sub(t0), syn.Resolved.Sub(t0), syn.ResolvedVia)
	}

	udp := outs[1]
	if udp.Incident != "u" || udp.KafkaTimeUsed || !udp.Start.Equal(at(9.1)) {
		t.Errorf("udp START = %q kafka=%v %v; want u from its arrival at +9.1", udp.Incident, udp.KafkaTimeUsed, udp.Start.Sub(t0))
	}
	if !udp.Notified.Equal(at(9.8)) || !udp.FirstBy["slack"].Equal(at(10.5)) {
		t.Errorf("udp notified %v, slack %v; want +9.8 (webhook) and +10.5 (slack, by customer/subnet)", udp.Notified.Sub(t0),
			udp.FirstBy["slack"].Sub(t0))
	}
	if !udp.End.IsZero() || !udp.Resolved.IsZero() {
		t.Errorf("udp has END %v / resolved %v; none was published", udp.End, udp.Resolved)
	}
	if outs[2].Incident != "" || !outs[2].Notified.IsZero() {
		t.Errorf("an attack with no START matched %q", outs[2].Incident)
	}

	var ids []string
	for _, e := range unexpected(outs, events) {
		ids = append(ids, e.ID)
	}
	if !slices.Equal(ids, []string{"old", "out"}) {
		t.Errorf("unexpected = %v; want the false START before the attack and the outbound one", ids)
	}

	want := map[string][]float64{
		"e2e.latency.datagram_to_start":     {9.5, 3.1},
		"e2e.latency.start_to_notification": {0.4, 0.7},
		"e2e.latency":                       {9.9, 3.8},
		"e2e.latency.stop_to_end":           {35},
		"e2e.latency.stop_to_resolved":      {35.5},
	}
	for _, s := range stages {
		got, missing := s.durations(outs)
		if !near(got, want[s.ID]) || missing != 3-len(want[s.ID]) {
			t.Errorf("%s = %v (missing %d); want %v", s.ID, got, missing, want[s.ID])
		}
	}

	// Order check: the complete attack passes, the others name what is missing.
	if p := checkOrder(syn); len(p) != 0 {
		t.Errorf("checkOrder(syn) = %v", p)
	}
	if p := strings.Join(checkOrder(udp), "; "); !strings.Contains(p, "udp: no END") || !strings.Contains(p, "udp: no resolved") {
		t.Errorf("checkOrder(udp) = %q", p)
	}
	bad := syn
	bad.Notified = at(9.4) // before START: a clock or matching bug
	if p := strings.Join(checkOrder(bad), "; "); !strings.Contains(p, "first notification") || !strings.Contains(p, "not after START") {
		t.Errorf("checkOrder(notified before START) = %q", p)
	}
}

func near(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if d := a[i] - b[i]; d > 1e-9 || d < -1e-9 {
			return false
		}
	}
	return true
}

func TestFigures(t *testing.T) {
	outs := []outcome{
		{Attack: attackRun{Sent: at(0), Stopped: at(12)}, Start: at(9.5), Notified: at(9.9), End: at(47), Resolved: at(47.5)},
		{Attack: attackRun{Sent: at(6), Stopped: at(15)}, Start: at(9.1), Notified: at(9.8)},
	}
	o := defaultOptions(false)
	figs := figures(o, outs)
	if len(figs) != len(stages) {
		t.Fatalf("%d figures, want %d", len(figs), len(stages))
	}
	byID := map[string]figure{}
	for _, f := range figs {
		byID[f.ID] = f
	}
	dts := byID["e2e.latency.datagram_to_start"]
	if dts.Value == nil || *dts.Value != 9.5 || dts.Check == nil || dts.Check.Bound != 10 || dts.Extra["p50"] != 3.1 {
		t.Errorf("datagram_to_start = %+v; want the worst (9.5) against ≤ 10 s, p50 3.1", dts)
	}
	e2e := byID["e2e.latency"]
	if e2e.Value == nil || *e2e.Value != 3.8 || e2e.Check != nil || e2e.Status != "measured" {
		t.Errorf("e2e.latency = %+v; want the median 3.8, no target", e2e)
	}
	res := byID["e2e.latency.stop_to_resolved"]
	if res.Extra["missing"] != 1 || !strings.HasPrefix(res.Note, "1 of 2 attacks never reached") {
		t.Errorf("stop_to_resolved = %+v; want one missing, said in the note", res)
	}
	none := figures(o, []outcome{{Attack: attackRun{Sent: at(0)}}})
	for _, f := range none[1:] {
		if f.Value != nil || f.Status != "failed" {
			t.Errorf("%s with nothing measured = %v %s; want null and failed", f.ID, f.Value, f.Status)
		}
	}
	q := figures(defaultOptions(true), outs)
	if !q[0].Quick || !strings.Contains(q[4].Note, "not the production figure") {
		t.Errorf("quick figures must be flagged and say end_windows differs: %+v", q[4])
	}
}

func TestRecordTime(t *testing.T) {
	since := at(0)
	for _, tc := range []struct {
		name        string
		ts, arrived time.Time
		want        time.Time
	}{
		{"producer timestamp", at(10.004), at(10.006), at(10.004)},
		{"none set: 1970", time.UnixMilli(0), at(10), time.Time{}},
		{"from the future", at(30), at(10), time.Time{}},
	} {
		if got := recordTime(tc.ts, tc.arrived, since); !got.Equal(tc.want) {
			t.Errorf("%s: recordTime = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestPhase(t *testing.T) {
	if p := phase(time.Unix(1_700_000_003, 250_000_000)); p < 3.2499 || p > 3.2501 {
		t.Fatalf("phase = %g, want 3.25 (epoch-aligned 10 s windows)", p)
	}
}
