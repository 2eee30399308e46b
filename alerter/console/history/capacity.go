package history

import (
	"context"
	"sort"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// CapacityQuery asks for every subnet's (or one customer's subnets')
// capacity figures over the Days days before To.
type CapacityQuery struct {
	Customer string // empty: every customer
	Days     int
	To       time.Time // zero: now (rounded up to the hour)
}

// Capacity is the answer.
type Capacity struct {
	From time.Time     `json:"from"`
	To   time.Time     `json:"to"`
	Days int           `json:"days"`
	Rows []CapacityRow `json:"rows"`
}

// CapacityRow is one customer, subnet and direction.
type CapacityRow struct {
	Customer  string `json:"customer"`
	Subnet    string `json:"subnet"`
	Direction string `json:"direction"`
	// P95BPS and PeakBPS are over the per-minute rates of the minutes
	// with traffic (flows_1h keeps each hour's minutes in minutesMap).
	P95BPS        float64 `json:"p95_bps"`
	PeakBPS       float64 `json:"peak_bps"`
	AvgBPS        float64 `json:"avg_bps"` // total bits / the whole window
	Bytes         uint64  `json:"bytes"`
	ActiveMinutes uint64  `json:"active_minutes"`
	// FirstBPS and LastBPS are the mean rates of the first and last
	// EdgeDays days of the window (days without traffic count as 0);
	// GrowthPct = LastBPS/FirstBPS - 1 in percent, nil when FirstBPS is 0.
	EdgeDays  int      `json:"edge_days"`
	FirstBPS  float64  `json:"first_bps"`
	LastBPS   float64  `json:"last_bps"`
	GrowthPct *float64 `json:"growth_pct"`
}

type capKey struct{ customer, subnet, direction string }

// Capacity reads flowsentry.flows_1h only: two queries, one for the
// per-minute p95 and peak, one for daily totals (growth).
func (s *Store) Capacity(ctx context.Context, q CapacityQuery) (*Capacity, error) {
	if q.Days < 1 || q.Days > 730 {
		return nil, badRequest("days: must be 1..730")
	}
	to := q.To
	if to.IsZero() {
		to = s.now()
	}
	to = ceil(to.UTC(), time.Hour)
	from := to.Add(-time.Duration(q.Days) * 24 * time.Hour)
	out := &Capacity{From: from, To: to, Days: q.Days, Rows: []CapacityRow{}}

	where, args := "hour >= toDateTime(?) AND hour < toDateTime(?)", []any{unix(from), unix(to)}
	if q.Customer != "" {
		where, args = where+" AND customer = ?", append(args, q.Customer)
	}
	byKey := map[capKey]*CapacityRow{}
	row := func(k capKey) *CapacityRow {
		if r := byKey[k]; r != nil {
			return r
		}
		r := &CapacityRow{Customer: k.customer, Subnet: k.subnet, Direction: k.direction}
		byKey[k] = r
		return r
	}
	// Rollup rows are partial sums until merged: sum per hour first, then
	// unfold the hour's per-minute byte counts.
	p95 := "SELECT customer, subnet, direction, toFloat64(quantileExact(0.95)(mb)) * 8 / 60, toFloat64(max(mb)) * 8 / 60, count() " +
		"FROM (SELECT customer, subnet, toString(direction) AS direction, arrayJoin(pm.2) AS mb FROM (" +
		"SELECT customer, subnet, direction, hour, sumMap(minutesMap.minute, minutesMap.bytes) AS pm FROM flows_1h WHERE " + where +
		" GROUP BY customer, subnet, direction, hour)) GROUP BY customer, subnet, direction"
	err := s.query(ctx, "capacity_p95", func(r driver.Rows) error {
		var k capKey
		var p95, peak float64
		var n uint64
		if err := r.Scan(&k.customer, &k.subnet, &k.direction, &p95, &peak, &n); err != nil {
			return err
		}
		c := row(k)
		c.P95BPS, c.PeakBPS, c.ActiveMinutes = p95, peak, n
		return nil
	}, p95, args...)
	if err != nil {
		return nil, err
	}
	daily := map[capKey][]uint64{}
	days := "SELECT customer, subnet, toString(direction), toUInt32(intDiv(toUInt32(hour) - ?, 86400)) AS day, sum(bytes) " +
		"FROM flows_1h WHERE " + where + " GROUP BY customer, subnet, direction, day"
	err = s.query(ctx, "capacity_days", func(r driver.Rows) error {
		var k capKey
		var day uint32
		var b uint64
		if err := r.Scan(&k.customer, &k.subnet, &k.direction, &day, &b); err != nil {
			return err
		}
		if int(day) >= q.Days {
			return nil
		}
		if daily[k] == nil {
			daily[k] = make([]uint64, q.Days)
		}
		daily[k][day] += b
		return nil
	}, days, append([]any{unix(from)}, args...)...)
	if err != nil {
		return nil, err
	}
	for k, perDay := range daily {
		c := row(k)
		growth(c, perDay)
	}
	for _, r := range byKey {
		out.Rows = append(out.Rows, *r)
	}
	sort.Slice(out.Rows, func(i, j int) bool {
		a, b := out.Rows[i], out.Rows[j]
		if a.P95BPS != b.P95BPS {
			return a.P95BPS > b.P95BPS
		}
		if a.Customer != b.Customer {
			return a.Customer < b.Customer
		}
		if a.Subnet != b.Subnet {
			return a.Subnet < b.Subnet
		}
		return a.Direction < b.Direction
	})
	return out, nil
}

// growth fills the totals and growth of c from its bytes per day (index 0
// is the window's first day).
func growth(c *CapacityRow, perDay []uint64) {
	n := len(perDay)
	edge := 7
	if n < 14 {
		edge = max(1, n/2)
	}
	var total, first, last uint64
	for i, b := range perDay {
		total += b
		if i < edge {
			first += b
		}
		if i >= n-edge {
			last += b
		}
	}
	const day = 86400.0
	c.Bytes = total
	c.AvgBPS = float64(total) * 8 / (float64(n) * day)
	c.EdgeDays = edge
	c.FirstBPS = float64(first) * 8 / (float64(edge) * day)
	c.LastBPS = float64(last) * 8 / (float64(edge) * day)
	c.GrowthPct = nil
	if first > 0 {
		g := (c.LastBPS/c.FirstBPS - 1) * 100
		c.GrowthPct = &g
	}
}
