package history

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// TalkersQuery asks for the heaviest sources, destinations and ports of a
// subnet's traffic in one direction over [From, To).
type TalkersQuery struct {
	Customer, Subnet, Direction string
	From, To                    time.Time
	Limit                       int
}

// Talkers is the answer, from raw flows.
type Talkers struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// Clamped: the asked window was longer than talkers_max_window, so
	// only its last talkers_max_window was read.
	Clamped      bool     `json:"clamped"`
	Sources      []Talker `json:"sources"`
	Destinations []Talker `json:"destinations"`
	Ports        []Talker `json:"ports"` // key "proto/dst_port", e.g. "17/53"
}

// Talker is one key's share of the window.
type Talker struct {
	Key     string `json:"key"`
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Flows   uint64 `json:"flows"`
}

// MaxTalkers bounds Limit.
const MaxTalkers = 100

// Talkers reads flowsentry.flows over a window bounded by
// talkers_max_window (raw flows are the biggest table by far).
func (s *Store) Talkers(ctx context.Context, q TalkersQuery) (*Talkers, error) {
	if q.Customer == "" || q.Subnet == "" {
		return nil, badRequest("customer and subnet are required")
	}
	if err := checkDirection(q.Direction); err != nil {
		return nil, err
	}
	if err := s.checkRange(q.From, q.To, s.cfg.MaxRange); err != nil {
		return nil, err
	}
	if q.Limit <= 0 || q.Limit > MaxTalkers {
		return nil, badRequest("limit: must be 1..%d", MaxTalkers)
	}
	out := &Talkers{From: q.From.UTC(), To: q.To.UTC(), Sources: []Talker{}, Destinations: []Talker{}, Ports: []Talker{}}
	if out.To.Sub(out.From) > s.cfg.TalkersMaxWindow {
		out.From, out.Clamped = out.To.Add(-s.cfg.TalkersMaxWindow), true
	}
	// customer and subnet lead flows' sort key: only their granules are read.
	where := "customer = ? AND subnet = ? AND direction = ? AND time_received >= toDateTime(?) AND time_received < toDateTime(?)"
	args := []any{q.Customer, q.Subnet, q.Direction, unix(out.From), unix(out.To)}
	for _, k := range []struct {
		name, expr string
		dst        *[]Talker
	}{
		{"talkers_sources", "IPv6NumToString(src_addr)", &out.Sources},
		{"talkers_destinations", "IPv6NumToString(dst_addr)", &out.Destinations},
		{"talkers_ports", "concat(toString(proto), '/', toString(dst_port))", &out.Ports},
	} {
		sql := fmt.Sprintf("SELECT %s AS k, sum(bytes) AS b, sum(packets) AS p, count() AS f FROM flows WHERE %s "+
			"GROUP BY k ORDER BY b DESC, k LIMIT %d", k.expr, where, q.Limit)
		err := s.query(ctx, k.name, func(r driver.Rows) error {
			var t Talker
			if err := r.Scan(&t.Key, &t.Bytes, &t.Packets, &t.Flows); err != nil {
				return err
			}
			t.Key = showAddr(t.Key)
			*k.dst = append(*k.dst, t)
			return nil
		}, sql, args...)
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// showAddr prints IPv4-mapped addresses (how flows stores IPv4) as IPv4.
func showAddr(s string) string {
	if a, err := netip.ParseAddr(s); err == nil && a.Is4In6() {
		return a.Unmap().String()
	}
	return s
}

// SubnetMatch is one (customer, subnet) seen in the hourly rollup.
type SubnetMatch struct {
	Customer string    `json:"customer"`
	Subnet   string    `json:"subnet"`
	Bytes    uint64    `json:"bytes"`
	LastSeen time.Time `json:"last_seen"` // start of the last hour with traffic
}

// Subnets finds customers and subnets whose name contains text (case
// insensitive; empty matches all) with traffic in the last `days` days,
// busiest first.
func (s *Store) Subnets(ctx context.Context, text string, days, limit int) ([]SubnetMatch, error) {
	if days < 1 || days > 730 {
		return nil, badRequest("days: must be 1..730")
	}
	if limit < 1 || limit > 500 {
		return nil, badRequest("limit: must be 1..500")
	}
	text = strings.TrimSpace(text)
	since := s.now().UTC().Truncate(time.Hour).Add(-time.Duration(days) * 24 * time.Hour)
	sql := fmt.Sprintf("SELECT customer, subnet, sum(bytes) AS b, max(hour) FROM flows_1h "+
		"WHERE hour >= toDateTime(?) AND (positionCaseInsensitive(customer, ?) > 0 OR positionCaseInsensitive(subnet, ?) > 0) "+
		"GROUP BY customer, subnet ORDER BY b DESC, customer, subnet LIMIT %d", limit)
	out := []SubnetMatch{}
	err := s.query(ctx, "subnets", func(r driver.Rows) error {
		var m SubnetMatch
		if err := r.Scan(&m.Customer, &m.Subnet, &m.Bytes, &m.LastSeen); err != nil {
			return err
		}
		m.LastSeen = m.LastSeen.UTC()
		out = append(out, m)
		return nil
	}, sql, unix(since), text, text)
	return out, err
}
