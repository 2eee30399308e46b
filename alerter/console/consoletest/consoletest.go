// Package consoletest puts known rows for one made-up customer into the
// real ClickHouse (flows, hence the rollups; baselines; alerts;
// notifications) so that the console's integration and browser tests can
// check the figures they get back against figures they can compute. The
// customer, subnet and incident names are unique per call, and flows use
// kafka_partition >= 65000, so tests never meet each other's rows or the
// sink's.
package consoletest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/console/history"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/prometheus/client_golang/prometheus"
)

// Sources of the recent traffic.
const (
	SrcA = "198.51.100.7"   // UDP to port 53, growing minute by minute
	SrcB = "2001:db8:77::9" // TCP to port 443, steady
)

// RecentMinutes is how many minutes of recent traffic there are.
const RecentMinutes = 10

// Flow is one inserted flow.
type Flow struct {
	T         time.Time
	Src, Dst  string
	Proto     uint8
	DstPort   uint16
	Bytes     uint64
	Packets   uint64
	Direction string
}

// Baseline is one inserted baselines row.
type Baseline struct {
	T                     time.Time
	Direction, Metric     string
	Expected, Spread, P95 float64
}

// Fixture is what Seed inserted.
type Fixture struct {
	Customer, Subnet, IncidentID string
	Dst, Dst2                    string // the subnet's addresses SrcA and SrcB send to
	Now                          time.Time
	// To is the capacity window's end (Now rounded up to the hour);
	// the first-week flows are on days 1..6 of the 30 days before it,
	// the last-week ones on days 23..28, the recent traffic on day 29.
	To time.Time
	// Recent is the first minute of the recent traffic (20 minutes ago).
	Recent    time.Time
	Flows     []Flow
	Baselines []Baseline
}

// RecentBytes is what the subnet received inbound in minute i (0-based)
// of the recent traffic: SrcA 60 000·(i+1) bytes, SrcB 6 000.
func RecentBytes(i int) uint64 { return 60_000*uint64(i+1) + 6_000 }

// AnalystStore reads the real server as flowsentry_analyst, as the alerter
// does (password FLOWSENTRY_CH_ANALYST_PASSWORD, locally analyst-dev).
func AnalystStore(t *testing.T) *history.Store {
	t.Helper()
	if os.Getenv("FLOWSENTRY_CH_ANALYST_PASSWORD") == "" {
		t.Setenv("FLOWSENTRY_CH_ANALYST_PASSWORD", "analyst-dev")
	}
	cfg := history.Default()
	if a := os.Getenv("FLOWSENTRY_CLICKHOUSE"); a != "" {
		cfg.ClickHouse.Addr = []string{a}
	}
	s := history.Open(cfg, prometheus.NewRegistry())
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return s
}

// Seed inserts the fixture as ClickHouse's admin user.
func Seed(t testing.TB) *Fixture {
	t.Helper()
	admin := itest.ClickHouse(t)
	a, b := rand.IntN(250)+1, rand.IntN(250)+1
	now := time.Now().UTC().Truncate(time.Second)
	f := &Fixture{Customer: "ctest-" + itest.RandomID(), Subnet: fmt.Sprintf("10.%d.%d.0/24", a, b),
		IncidentID: "an-ctest-" + itest.RandomID(), Dst: fmt.Sprintf("10.%d.%d.10", a, b), Dst2: fmt.Sprintf("10.%d.%d.20", a, b),
		Now: now, To: ceilHour(now), Recent: now.Truncate(time.Minute).Add(-20 * time.Minute)}
	for i := 0; i < RecentMinutes; i++ {
		m := f.Recent.Add(time.Duration(i) * time.Minute)
		f.Flows = append(f.Flows,
			Flow{T: m.Add(5 * time.Second), Src: SrcA, Dst: f.Dst, Proto: 17, DstPort: 53, Bytes: 60_000 * uint64(i+1), Packets: 100 * uint64(i+1), Direction: "inbound"},
			Flow{T: m.Add(35 * time.Second), Src: SrcB, Dst: f.Dst2, Proto: 6, DstPort: 443, Bytes: 6_000, Packets: 10, Direction: "inbound"})
	}
	// Outbound traffic must not show in the inbound figures.
	f.Flows = append(f.Flows, Flow{T: f.Recent.Add(10 * time.Second), Src: f.Dst, Dst: SrcA, Proto: 17, DstPort: 40000,
		Bytes: 1_000_000, Packets: 1000, Direction: "outbound"})
	from := f.To.Add(-30 * 24 * time.Hour)
	for d := 1; d <= 6; d++ {
		f.Flows = append(f.Flows, Flow{T: from.Add(time.Duration(d)*24*time.Hour + 12*time.Hour), Src: SrcA, Dst: f.Dst, Proto: 17,
			DstPort: 53, Bytes: 86_400_000, Packets: 86_400, Direction: "inbound"})
	}
	for j := 0; j < 6; j++ {
		f.Flows = append(f.Flows, Flow{T: from.Add(time.Duration(23+j)*24*time.Hour + 12*time.Hour), Src: SrcA, Dst: f.Dst, Proto: 17,
			DstPort: 53, Bytes: 172_800_000 + uint64(j)*6_000_000, Packets: 172_800, Direction: "inbound"})
	}
	f.Baselines = []Baseline{
		{T: f.Recent.Add(-2 * time.Minute), Direction: "inbound", Metric: "bps", Expected: 8_000, Spread: 2_000, P95: 9_500},
		{T: f.Recent.Add(3 * time.Minute), Direction: "inbound", Metric: "bps", Expected: 9_000, Spread: 2_500, P95: 11_000},
		{T: f.Recent.Add(8 * time.Minute), Direction: "inbound", Metric: "bps", Expected: 10_000, Spread: 3_000, P95: 12_000},
		{T: f.Recent.Add(3 * time.Minute), Direction: "inbound", Metric: "pps", Expected: 20, Spread: 5, P95: 30},
		{T: f.Recent.Add(-2 * time.Minute), Direction: "inbound", Metric: "pps_udp", Expected: 3, Spread: 1, P95: 4},
		{T: f.Recent.Add(5 * time.Minute), Direction: "inbound", Metric: "pps_udp", Expected: 4, Spread: 1.5, P95: 6},
		{T: f.Recent.Add(3 * time.Minute), Direction: "outbound", Metric: "bps", Expected: 999_999, Spread: 1, P95: 999_999},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	insertFlows(ctx, t, admin, f)
	insertBaselines(ctx, t, admin, f)
	insertIncident(ctx, t, admin, f)
	return f
}

func ceilHour(t time.Time) time.Time {
	if h := t.Truncate(time.Hour); !h.Equal(t) {
		return h.Add(time.Hour)
	}
	return t
}

func addr16(t testing.TB, s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		t.Fatal(err)
	}
	b := a.As16()
	return string(b[:])
}

func send(ctx context.Context, t testing.TB, conn driver.Conn, sql string, rows [][]any) {
	t.Helper()
	batch, err := conn.PrepareBatch(ctx, sql)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	for _, r := range rows {
		if err := batch.Append(r...); err != nil {
			t.Fatalf("%s: append: %v", sql, err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("%s: send: %v", sql, err)
	}
}

func insertFlows(ctx context.Context, t testing.TB, conn driver.Conn, f *Fixture) {
	part := uint16(65000 + rand.IntN(500))
	var rows [][]any
	for i, fl := range f.Flows {
		rows = append(rows, []any{fl.T, fl.T, fl.T, addr16(t, fl.Src), addr16(t, fl.Dst), uint16(33000), fl.DstPort, fl.Proto,
			fl.Bytes, fl.Packets, f.Customer, f.Subnet, fl.Direction, part, uint64(1_000_000 + i), uint32(0)})
	}
	// One INSERT per day partition, as the sink does.
	byDay := map[string][][]any{}
	for i, r := range rows {
		d := f.Flows[i].T.Format("20060102")
		byDay[d] = append(byDay[d], r)
	}
	for _, rs := range byDay {
		send(ctx, t, conn, "INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, src_addr, dst_addr, "+
			"src_port, dst_port, proto, bytes, packets, customer, subnet, direction, kafka_partition, kafka_offset, kafka_index)", rs)
	}
}

func insertBaselines(ctx context.Context, t testing.TB, conn driver.Conn, f *Fixture) {
	var rows [][]any
	for _, b := range f.Baselines {
		rows = append(rows, []any{b.T, f.Customer, f.Subnet, b.Direction, b.Metric, b.Expected, b.Spread, b.Expected, b.P95, uint64(360)})
	}
	send(ctx, t, conn, "INSERT INTO flowsentry.baselines (time, customer, subnet, direction, metric, expected, spread, observed, p95, samples)", rows)
}

// insertIncident writes the incident's events (the UPDATE twice, as a
// re-delivery would) and its audit rows.
func insertIncident(ctx context.Context, t testing.TB, conn driver.Conn, f *Fixture) {
	start, end := f.Recent.Add(time.Minute), f.Recent.Add(9*time.Minute)
	ev := func(kind string, seq uint32, updated, ended time.Time, sev string, obs float64, reason string) []any {
		return []any{f.IncidentID, kind, seq, f.Customer, f.Subnet, "inbound", "udp_flood", sev, start, updated, ended,
			"pps_udp", "pps", obs, 2.0, 12.5, uint64(80_000), uint64(150), uint64(3_300_000), uint64(5_500), "{}", reason}
	}
	zero := time.Unix(0, 0).UTC()
	send(ctx, t, conn, "INSERT INTO flowsentry.alerts (incident_id, event_kind, event_seq, customer, subnet, direction, class, "+
		"severity, started_at, updated_at, ended_at, metric, unit, observed, expected, score, peak_bps, peak_pps, total_bytes, "+
		"total_packets, fingerprint, reason)", [][]any{
		ev("start", 0, start, zero, "warning", 6, ""),
		ev("update", 1, start.Add(4*time.Minute), zero, "critical", 15, ""),
		ev("update", 1, start.Add(4*time.Minute), zero, "critical", 15, ""),
		ev("end", 2, end, end, "critical", 1, "below threshold for 3 windows"),
	})
	row := func(at time.Time, record, action, receiver, kind string, attempt uint16, outcome string, status uint16, actor string) []any {
		return []any{at, f.IncidentID, record, action, receiver, kind, attempt, outcome, status, uint32(1200), f.Customer, f.Subnet,
			"udp_flood", "critical", actor, ""}
	}
	send(ctx, t, conn, "INSERT INTO flowsentry.notifications (time, incident_id, record, action, receiver, receiver_kind, attempt, "+
		"outcome, status, latency_ms, customer, subnet, class, severity, actor, detail)", [][]any{
		row(start.Add(2*time.Second), "incident", "opened", "", "", 0, "", 0, "detector"),
		row(start.Add(3*time.Second), "notification", "firing", "noc-slack", "slack", 1, "retry", 503, ""),
		row(start.Add(5*time.Second), "notification", "firing", "noc-slack", "slack", 2, "delivered", 200, ""),
		row(end.Add(2*time.Second), "incident", "resolved", "", "", 0, "", 0, "detector"),
	})
}

// ExpectedCapacity computes a direction's capacity row from the fixture's
// flows, the plain way: per-minute byte sums, ClickHouse's quantileExact
// (the value at index floor(0.95·n) of the sorted minutes), and the mean
// rates of the first and last 7 days of the 30.
func ExpectedCapacity(f *Fixture, dir string) history.CapacityRow {
	from := f.To.Add(-30 * 24 * time.Hour)
	perMinute := map[time.Time]uint64{}
	var total, first, last uint64
	for _, fl := range f.Flows {
		if fl.Direction != dir || fl.T.Before(from) || !fl.T.Before(f.To) {
			continue
		}
		perMinute[fl.T.Truncate(time.Minute)] += fl.Bytes
		total += fl.Bytes
		switch day := int(fl.T.Sub(from) / (24 * time.Hour)); {
		case day < 7:
			first += fl.Bytes
		case day >= 23:
			last += fl.Bytes
		}
	}
	var mins []uint64
	for _, b := range perMinute {
		mins = append(mins, b)
	}
	sort.Slice(mins, func(i, j int) bool { return mins[i] < mins[j] })
	r := history.CapacityRow{Bytes: total, ActiveMinutes: uint64(len(mins)), EdgeDays: 7,
		P95BPS: float64(mins[int(0.95*float64(len(mins)))]) * 8 / 60, PeakBPS: float64(mins[len(mins)-1]) * 8 / 60,
		FirstBPS: float64(first) * 8 / (7 * 86400), LastBPS: float64(last) * 8 / (7 * 86400)}
	if first > 0 {
		g := (r.LastBPS/r.FirstBPS - 1) * 100
		r.GrowthPct = &g
	}
	return r
}
