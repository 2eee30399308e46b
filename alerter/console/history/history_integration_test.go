//go:build integration

package history_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/console/consoletest"
	"github.com/packetworks/flowsentry/alerter/console/history"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-6*math.Max(1, math.Abs(b)) }

func TestTrafficAgainstBaseline(t *testing.T) {
	f := consoletest.Seed(t)
	s := consoletest.AnalystStore(t)
	ctx := context.Background()
	from, to := f.Recent.Add(-5*time.Minute), f.Recent.Add(15*time.Minute)
	tr, err := s.Traffic(ctx, history.TrafficQuery{Customer: f.Customer, Subnet: f.Subnet, Direction: "inbound", Metric: "bps", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Table != "flows_1m" || tr.StepSeconds != 60 || tr.Unit != "bps" {
		t.Fatalf("read %s step %d unit %s, want flows_1m, 60, bps", tr.Table, tr.StepSeconds, tr.Unit)
	}
	if len(tr.Points) != 20 {
		t.Fatalf("%d points, want 20 (one per minute, zeros included): %v", len(tr.Points), tr.Points)
	}
	for _, p := range tr.Points {
		i := int(p.T.Sub(f.Recent) / time.Minute)
		want := 0.0
		if i >= 0 && i < consoletest.RecentMinutes {
			want = float64(consoletest.RecentBytes(i)) * 8 / 60
		}
		if !near(p.V, want) {
			t.Errorf("minute %s: %.3f bps, want %.3f", p.T.Format("15:04"), p.V, want)
		}
	}
	// The three inbound bps snapshots (the pps and outbound ones are other series).
	var want []consoletest.Baseline
	for _, b := range f.Baselines {
		if b.Direction == "inbound" && b.Metric == "bps" {
			want = append(want, b)
		}
	}
	if len(tr.Baseline) != len(want) {
		t.Fatalf("%d baseline points, want %d: %+v", len(tr.Baseline), len(want), tr.Baseline)
	}
	for i, b := range tr.Baseline {
		lo, hi := history.BandOf(want[i].Expected, want[i].Spread, tr.BandSpreads)
		if !b.T.Equal(want[i].T.Truncate(time.Minute)) || b.Expected != want[i].Expected || b.P95 != want[i].P95 ||
			!near(b.Low, lo) || !near(b.High, hi) || !(b.Low < b.Expected && b.Expected < b.High) {
			t.Errorf("baseline %d: %+v, want %+v (band %.1f..%.1f)", i, b, want[i], lo, hi)
		}
	}

	// A protocol metric filters the rollup by protocol: SrcA is the UDP.
	udp, err := s.Traffic(ctx, history.TrafficQuery{Customer: f.Customer, Subnet: f.Subnet, Direction: "inbound", Metric: "pps_udp", From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range udp.Points {
		if i := int(p.T.Sub(f.Recent) / time.Minute); i == 3 && !near(p.V, 400.0/60) {
			t.Errorf("pps_udp minute 3: %.4f, want %.4f", p.V, 400.0/60)
		}
	}

	// Days: the hourly rollup, per-hour rates.
	week, err := s.Traffic(ctx, history.TrafficQuery{Customer: f.Customer, Subnet: f.Subnet, Direction: "inbound", Metric: "bps",
		From: f.Now.Add(-7 * 24 * time.Hour), To: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	if week.Table != "flows_1h" || week.StepSeconds != 3600 {
		t.Fatalf("7 days read %s step %d, want flows_1h 3600", week.Table, week.StepSeconds)
	}
	perHour := map[time.Time]uint64{}
	for _, fl := range f.Flows {
		if fl.Direction == "inbound" && !fl.T.Before(week.From) && fl.T.Before(week.To) {
			perHour[fl.T.Truncate(time.Hour)] += fl.Bytes
		}
	}
	got := map[time.Time]float64{}
	for _, p := range week.Points {
		if p.V != 0 {
			got[p.T] = p.V
		}
	}
	if len(got) != len(perHour) {
		t.Fatalf("%d hours with traffic, want %d", len(got), len(perHour))
	}
	for h, b := range perHour {
		if !near(got[h], float64(b)*8/3600) {
			t.Errorf("hour %s: %.3f bps, want %.3f", h, got[h], float64(b)*8/3600)
		}
	}
}

func TestTalkersAndSearch(t *testing.T) {
	f := consoletest.Seed(t)
	s := consoletest.AnalystStore(t)
	ctx := context.Background()
	tk, err := s.Talkers(ctx, history.TalkersQuery{Customer: f.Customer, Subnet: f.Subnet, Direction: "inbound",
		From: f.Recent, To: f.Recent.Add(10 * time.Minute), Limit: 5})
	if err != nil {
		t.Fatal(err)
	}
	var aBytes uint64
	for i := 0; i < consoletest.RecentMinutes; i++ {
		aBytes += 60_000 * uint64(i+1)
	}
	wantSrc := []history.Talker{{Key: consoletest.SrcA, Bytes: aBytes, Packets: 5500, Flows: 10},
		{Key: consoletest.SrcB, Bytes: 60_000, Packets: 100, Flows: 10}}
	if len(tk.Sources) != 2 || tk.Sources[0] != wantSrc[0] || tk.Sources[1] != wantSrc[1] || tk.Clamped {
		t.Fatalf("sources %+v clamped %v, want %+v", tk.Sources, tk.Clamped, wantSrc)
	}
	if len(tk.Destinations) != 2 || tk.Destinations[0].Key != f.Dst || tk.Destinations[1].Key != f.Dst2 {
		t.Fatalf("destinations %+v", tk.Destinations)
	}
	if len(tk.Ports) != 2 || tk.Ports[0].Key != "17/53" || tk.Ports[1].Key != "6/443" {
		t.Fatalf("ports %+v", tk.Ports)
	}
	// A day asked: only the last talkers_max_window (1h) is read.
	long, err := s.Talkers(ctx, history.TalkersQuery{Customer: f.Customer, Subnet: f.Subnet, Direction: "inbound",
		From: f.Now.Add(-24 * time.Hour), To: f.Now, Limit: 5})
	if err != nil || !long.Clamped || long.To.Sub(long.From) != time.Hour {
		t.Fatalf("long window: %+v %v", long, err)
	}

	m, err := s.Subnets(ctx, f.Subnet, 7, 10)
	if err != nil {
		t.Fatal(err)
	}
	since := time.Now().UTC().Truncate(time.Hour).Add(-7 * 24 * time.Hour)
	var want uint64
	var last time.Time
	for _, fl := range f.Flows {
		if !fl.T.Before(since) {
			want += fl.Bytes
			if h := fl.T.Truncate(time.Hour); h.After(last) {
				last = h
			}
		}
	}
	if len(m) != 1 || m[0].Customer != f.Customer || m[0].Bytes != want || !m[0].LastSeen.Equal(last) {
		t.Fatalf("search %q: %+v, want one match of %d bytes last seen %s", f.Subnet, m, want, last)
	}
	if m, err := s.Subnets(ctx, f.Customer[:12], 7, 10); err != nil || len(m) != 1 || m[0].Subnet != f.Subnet {
		t.Fatalf("search by customer: %+v %v", m, err)
	}
}

func TestCapacity(t *testing.T) {
	f := consoletest.Seed(t)
	s := consoletest.AnalystStore(t)
	c, err := s.Capacity(context.Background(), history.CapacityQuery{Customer: f.Customer, Days: 30, To: f.To})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Rows) != 2 {
		t.Fatalf("%d rows, want inbound and outbound: %+v", len(c.Rows), c.Rows)
	}
	in := c.Rows[0]
	if in.Direction != "inbound" || in.Subnet != f.Subnet {
		t.Fatalf("first row %+v, want the inbound one (highest p95)", in)
	}
	want := consoletest.ExpectedCapacity(f, "inbound")
	if !near(in.P95BPS, want.P95BPS) || !near(in.PeakBPS, want.PeakBPS) || in.Bytes != want.Bytes || in.ActiveMinutes != want.ActiveMinutes ||
		!near(in.FirstBPS, want.FirstBPS) || !near(in.LastBPS, want.LastBPS) || in.GrowthPct == nil || !near(*in.GrowthPct, *want.GrowthPct) {
		t.Fatalf("inbound\n got %+v (growth %v)\nwant %+v (growth %v)", in, deref(in.GrowthPct), want, deref(want.GrowthPct))
	}
	out := c.Rows[1]
	if out.Direction != "outbound" || out.Bytes != 1_000_000 || out.GrowthPct != nil {
		t.Fatalf("outbound %+v: no traffic in the first week, so no growth figure", out)
	}
}

func deref(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}

func TestIncidentHistory(t *testing.T) {
	f := consoletest.Seed(t)
	s := consoletest.AnalystStore(t)
	for _, customer := range []string{f.Customer, ""} { // with and without the sort-key hint
		h, err := s.Incident(context.Background(), f.IncidentID, customer)
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range h.Events {
			kinds = append(kinds, e.Kind)
		}
		if len(h.Events) != 3 || kinds[0] != "start" || kinds[1] != "update" || kinds[2] != "end" ||
			h.Events[1].Severity != "critical" || h.Events[2].Reason != "below threshold for 3 windows" ||
			!h.Events[0].EndedAt.IsZero() || h.Events[2].EndedAt.IsZero() {
			t.Fatalf("events (the re-delivered update folded): %+v", h.Events)
		}
		if len(h.Notifications) != 4 || h.Notifications[1].Outcome != "retry" || h.Notifications[1].Status != 503 ||
			h.Notifications[2].Outcome != "delivered" || h.Notifications[2].Attempt != 2 || h.Notifications[3].Action != "resolved" {
			t.Fatalf("notifications %+v", h.Notifications)
		}
	}
}
