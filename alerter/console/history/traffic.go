package history

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TrafficQuery asks for a subnet's (or, with Subnet empty, a customer's)
// traffic in one direction over [From, To).
type TrafficQuery struct {
	Customer, Subnet, Direction string
	Metric                      string // bps, pps, flows, pps_tcp, pps_udp, pps_icmp, pps_other
	From, To                    time.Time
}

// Traffic is a rate series with the detector's baseline band.
type Traffic struct {
	Customer    string    `json:"customer"`
	Subnet      string    `json:"subnet"`
	Direction   string    `json:"direction"`
	Metric      string    `json:"metric"`
	Unit        string    `json:"unit"`
	Table       string    `json:"table"` // the rollup read: flows_1m or flows_1h
	StepSeconds int       `json:"step_seconds"`
	From        time.Time `json:"from"`
	To          time.Time `json:"to"`
	// Points are per-second rates averaged over each step; complete steps
	// without rows are 0 (no traffic), not gaps, so a drop shows.
	Points      []Point `json:"points"`
	BandSpreads float64 `json:"band_spreads"`
	Baseline    []Band  `json:"baseline"`
}

// Point is one step of the series.
type Point struct {
	T time.Time `json:"t"`
	V float64   `json:"v"`
}

// Band is the baseline at T: the detector's expected level, the band
// expected ± k spreads and the p95 of the windows it saw.
type Band struct {
	T        time.Time `json:"t"`
	Expected float64   `json:"expected"`
	Low      float64   `json:"low"`
	High     float64   `json:"high"`
	P95      float64   `json:"p95"`
}

// rateMetric is how a baseline metric is computed from a rollup.
type rateMetric struct {
	unit, sum, where string
}

// rateMetrics are the baseline metrics the rollups can reproduce (the
// detector's protocol classes: ICMP is 1 and 58).
var rateMetrics = map[string]rateMetric{
	"bps":       {"bps", "sum(bytes) * 8", ""},
	"pps":       {"pps", "sum(packets)", ""},
	"flows":     {"flows/s", "sum(flows)", ""},
	"pps_tcp":   {"pps", "sum(packets)", "proto = 6"},
	"pps_udp":   {"pps", "sum(packets)", "proto = 17"},
	"pps_icmp":  {"pps", "sum(packets)", "proto IN (1, 58)"},
	"pps_other": {"pps", "sum(packets)", "proto NOT IN (1, 6, 17, 58)"},
}

// Metrics lists the metrics Traffic accepts.
func Metrics() []string {
	out := make([]string, 0, len(rateMetrics))
	for m := range rateMetrics {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}

func checkDirection(d string) error {
	if d != "inbound" && d != "outbound" {
		return badRequest("direction: %q is not inbound or outbound", d)
	}
	return nil
}

func (s *Store) checkRange(from, to time.Time, max time.Duration) error {
	switch {
	case from.IsZero() || to.IsZero():
		return badRequest("from and to are required")
	case !from.Before(to):
		return badRequest("from must be before to")
	case to.Sub(from) > max:
		return badRequest("range longer than %s", max)
	}
	return nil
}

// rollup picks the smallest table that answers a range.
func (s *Store) rollup(from, to time.Time) (table, timeCol string, step time.Duration) {
	if to.Sub(from) <= s.cfg.MinuteRollupMaxSpan {
		return "flows_1m", "minute", time.Minute
	}
	return "flows_1h", "hour", time.Hour
}

// Traffic reads the series from the rollup that answers and the baseline
// band from the baselines snapshots.
func (s *Store) Traffic(ctx context.Context, q TrafficQuery) (*Traffic, error) {
	m, ok := rateMetrics[q.Metric]
	if !ok {
		return nil, badRequest("metric: %q is not one of %s", q.Metric, strings.Join(Metrics(), ", "))
	}
	if q.Customer == "" && q.Subnet == "" {
		return nil, badRequest("customer or subnet is required")
	}
	if err := checkDirection(q.Direction); err != nil {
		return nil, err
	}
	if err := s.checkRange(q.From, q.To, s.cfg.MaxRange); err != nil {
		return nil, err
	}
	table, col, step := s.rollup(q.From, q.To)
	from, to := q.From.UTC().Truncate(step), ceil(q.To.UTC(), step)
	out := &Traffic{Customer: q.Customer, Subnet: q.Subnet, Direction: q.Direction, Metric: q.Metric, Unit: m.unit,
		Table: table, StepSeconds: int(step / time.Second), From: from, To: to, BandSpreads: s.cfg.BandSpreads,
		Points: []Point{}, Baseline: []Band{}}

	where, args := []string{col + " >= toDateTime(?)", col + " < toDateTime(?)", "direction = ?"},
		[]any{unix(from), unix(to), q.Direction}
	if q.Customer != "" {
		where, args = append(where, "customer = ?"), append(args, q.Customer)
	}
	if q.Subnet != "" {
		where, args = append(where, "subnet = ?"), append(args, q.Subnet)
	}
	if m.where != "" {
		where = append(where, m.where)
	}
	sql := fmt.Sprintf("SELECT %s AS t, toFloat64(%s) / %d AS v FROM %s WHERE %s GROUP BY t ORDER BY t",
		col, m.sum, out.StepSeconds, table, strings.Join(where, " AND "))
	var rows []Point
	err := s.query(ctx, "traffic", func(r driver.Rows) error {
		var p Point
		if err := r.Scan(&p.T, &p.V); err != nil {
			return err
		}
		p.T = p.T.UTC()
		rows = append(rows, p)
		return nil
	}, sql, args...)
	if err != nil {
		return nil, err
	}
	out.Points = fillZeros(rows, from, to, step, s.now())

	// Snapshots come every few minutes; on the hourly scale they are
	// averaged per hour (the band of the average level and spread).
	bstep := int64(step / time.Second)
	bwhere, bargs := []string{"time >= toDateTime(?)", "time < toDateTime(?)", "subnet = ?", "direction = ?", "metric = ?"},
		[]any{unix(from.Add(-snapshotSlack)), unix(to), q.Subnet, q.Direction, q.Metric}
	if q.Customer != "" {
		bwhere, bargs = append(bwhere, "customer = ?"), append(bargs, q.Customer)
	}
	bsql := fmt.Sprintf("SELECT toDateTime(intDiv(toUInt32(time), %d) * %d) AS t, avg(expected), avg(spread), max(p95) "+
		"FROM baselines WHERE %s GROUP BY t ORDER BY t", bstep, bstep, strings.Join(bwhere, " AND "))
	err = s.query(ctx, "baseline", func(r driver.Rows) error {
		var b Band
		var spread float64
		if err := r.Scan(&b.T, &b.Expected, &spread, &b.P95); err != nil {
			return err
		}
		b.T = b.T.UTC()
		b.Low, b.High = BandOf(b.Expected, spread, s.cfg.BandSpreads)
		out.Baseline = append(out.Baseline, b)
		return nil
	}, bsql, bargs...)
	if err != nil {
		return nil, err
	}
	return out, nil
}

// snapshotSlack reaches back for the snapshot in force at the start of a
// range (the detector publishes every 5 minutes by default).
const snapshotSlack = 10 * time.Minute

// BandOf turns a snapshot's expected level and spread (linear units) into
// the band expected ± k spreads. The detector scores in the log domain
// x = log2(1+v), and its linear spread is (E+1)(2^s - 1) for a log-domain
// spread s, so the band is (E+1)·2^(±k·s) - 1: the level at which the
// detector would score ±k. It is asymmetric in linear units, as it is.
func BandOf(expected, spread, k float64) (low, high float64) {
	expected = math.Max(expected, 0)
	if !(spread > 0) || math.IsInf(spread, 0) {
		return expected, expected
	}
	s := math.Log2(1 + spread/(expected+1))
	high = (expected+1)*math.Exp2(k*s) - 1
	low = math.Max(0, (expected+1)*math.Exp2(-k*s)-1)
	return low, high
}

// fillZeros returns one point per step of [from, to): the rows' values,
// and 0 for complete steps without rows (steps ending after now are left
// out unless ClickHouse has something for them).
func fillZeros(rows []Point, from, to time.Time, step time.Duration, now time.Time) []Point {
	byT := make(map[int64]float64, len(rows))
	for _, p := range rows {
		byT[p.T.Unix()] += p.V
	}
	out := make([]Point, 0, int(to.Sub(from)/step))
	for t := from; t.Before(to); t = t.Add(step) {
		v, ok := byT[t.Unix()]
		if !ok && t.Add(step).After(now) {
			continue
		}
		out = append(out, Point{T: t, V: v})
	}
	return out
}

func ceil(t time.Time, step time.Duration) time.Time {
	f := t.Truncate(step)
	if f.Equal(t) {
		return t
	}
	return f.Add(step)
}
