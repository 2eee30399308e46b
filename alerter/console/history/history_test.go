package history

import (
	"context"
	"errors"
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBandOf(t *testing.T) {
	cases := []struct {
		name                   string
		expected, spread, k    float64
		wantLow, wantHigh      float64
		checkLogDomainDistance bool
		lowClamped             bool
	}{
		{name: "no spread", expected: 100, spread: 0, k: 3, wantLow: 100, wantHigh: 100},
		{name: "negative expected is 0", expected: -5, spread: 0, k: 3, wantLow: 0, wantHigh: 0},
		// E=1023 (x=10), spread (E+1)(2^1-1)=1024 is one log2 unit: ±2 units.
		{name: "one log unit, k=2", expected: 1023, spread: 1024, k: 2, wantLow: 1024/4.0 - 1, wantHigh: 1024*4 - 1},
		{name: "wide band clamps at 0", expected: 3, spread: 1000, k: 5, checkLogDomainDistance: true, lowClamped: true},
		{name: "typical", expected: 10_000, spread: 1_095, k: 3, checkLogDomainDistance: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			lo, hi := BandOf(tc.expected, tc.spread, tc.k)
			if tc.checkLogDomainDistance {
				// The upper edge scores exactly +k in the detector's domain.
				s := math.Log2(1 + tc.spread/(tc.expected+1))
				if got := (math.Log2(1+hi) - math.Log2(1+tc.expected)) / s; math.Abs(got-tc.k) > 1e-9 {
					t.Fatalf("upper edge is %.6f spreads away, want %g", got, tc.k)
				}
				if lo < 0 || lo > tc.expected {
					t.Fatalf("low %g outside [0, expected]", lo)
				}
				if tc.lowClamped && lo != 0 {
					t.Fatalf("low %g, want clamped 0", lo)
				}
				return
			}
			if math.Abs(lo-tc.wantLow) > 1e-9 || math.Abs(hi-tc.wantHigh) > 1e-9 {
				t.Fatalf("band %g..%g, want %g..%g", lo, hi, tc.wantLow, tc.wantHigh)
			}
		})
	}
}

func TestFillZeros(t *testing.T) {
	t0 := time.Date(2026, 11, 20, 11, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	rows := []Point{{at(1), 10}, {at(3), 30}, {at(3), 5}, {at(6), 60}}
	cases := []struct {
		name string
		now  time.Time
		want []float64
	}{
		{"all complete", at(60), []float64{0, 10, 0, 35, 0, 0, 60, 0}},
		// Steps not over yet are left out unless they have data.
		{"now inside the range", at(5).Add(30 * time.Second), []float64{0, 10, 0, 35, 0, 60}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fillZeros(rows, at(0), at(8), time.Minute, tc.now)
			var vs []float64
			for i, p := range got {
				if i > 0 && !p.T.After(got[i-1].T) {
					t.Fatalf("points not in order: %v", got)
				}
				vs = append(vs, p.V)
			}
			if len(vs) != len(tc.want) {
				t.Fatalf("got %v, want %v", vs, tc.want)
			}
			for i := range vs {
				if vs[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", vs, tc.want)
				}
			}
		})
	}
}

func TestGrowth(t *testing.T) {
	const day = 86400.0
	days := func(n int, f func(i int) uint64) []uint64 {
		out := make([]uint64, n)
		for i := range out {
			out[i] = f(i)
		}
		return out
	}
	cases := []struct {
		name       string
		perDay     []uint64
		edge       int
		wantGrowth any // float64 or nil
		wantAvg    float64
	}{
		{"flat 30 days", days(30, func(int) uint64 { return 1000 }), 7, 0.0, 1000 * 8 / day},
		{"doubles", days(30, func(i int) uint64 { return map[bool]uint64{true: 2000, false: 1000}[i >= 15] }), 7, 100.0,
			(15*1000 + 15*2000) * 8 / (30 * day)},
		{"new subnet: no first week", days(30, func(i int) uint64 { return map[bool]uint64{true: 500, false: 0}[i >= 20] }), 7, nil,
			10 * 500 * 8 / (30 * day)},
		{"short window uses halves", days(6, func(i int) uint64 { return uint64(100 * (1 + i/3)) }), 3, 100.0, 900 * 8 / (6 * day)},
		{"one day", []uint64{864}, 1, 0.0, 864 * 8 / day},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var c CapacityRow
			growth(&c, tc.perDay)
			if c.EdgeDays != tc.edge || math.Abs(c.AvgBPS-tc.wantAvg) > 1e-9 {
				t.Fatalf("edge %d avg %g, want %d %g", c.EdgeDays, c.AvgBPS, tc.edge, tc.wantAvg)
			}
			switch w := tc.wantGrowth.(type) {
			case nil:
				if c.GrowthPct != nil {
					t.Fatalf("growth %g, want none", *c.GrowthPct)
				}
			case float64:
				if c.GrowthPct == nil || math.Abs(*c.GrowthPct-w) > 1e-9 {
					t.Fatalf("growth %v, want %g", c.GrowthPct, w)
				}
			}
		})
	}
}

func TestShowAddr(t *testing.T) {
	for in, want := range map[string]string{"::ffff:203.0.113.7": "203.0.113.7", "2001:db8::1": "2001:db8::1", "garbage": "garbage"} {
		if got := showAddr(in); got != want {
			t.Errorf("showAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// recorder is a Querier that records what it was asked and fails with err.
type recorder struct {
	sql  []string
	args [][]any
	err  error
}

func (r *recorder) Query(_ context.Context, sql string, args ...any) (driver.Rows, error) {
	r.sql = append(r.sql, sql)
	r.args = append(r.args, args)
	return nil, r.err
}

var errStop = errors.New("stop here")

func TestQuestionsAndTables(t *testing.T) {
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		name      string
		call      func(*Store) error
		wantErr   error  // nil: the query was sent (and the recorder failed it)
		wantSQL   string // in the first query
		wantInErr string
	}{
		{"hours read flows_1m", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Subnet: "203.0.113.0/24", Direction: "inbound", Metric: "bps", From: now.Add(-6 * time.Hour), To: now})
			return err
		}, nil, "FROM flows_1m", ""},
		{"days read flows_1h", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Direction: "outbound", Metric: "pps_icmp", From: now.Add(-7 * 24 * time.Hour), To: now})
			return err
		}, nil, "proto IN (1, 58)", ""},
		{"unknown metric", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Direction: "inbound", Metric: "pps_syn", From: now.Add(-time.Hour), To: now})
			return err
		}, ErrBadRequest, "", "metric"},
		{"bad direction", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Direction: "sideways", Metric: "bps", From: now.Add(-time.Hour), To: now})
			return err
		}, ErrBadRequest, "", "direction"},
		{"reversed range", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Direction: "inbound", Metric: "bps", From: now, To: now.Add(-time.Hour)})
			return err
		}, ErrBadRequest, "", "from must be before to"},
		{"range too long", func(s *Store) error {
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Direction: "inbound", Metric: "bps", From: now.Add(-500 * 24 * time.Hour), To: now})
			return err
		}, ErrBadRequest, "", "range longer"},
		{"talkers need a subnet", func(s *Store) error {
			_, err := s.Talkers(context.Background(), TalkersQuery{Customer: "acme", Direction: "inbound", From: now.Add(-time.Hour), To: now, Limit: 5})
			return err
		}, ErrBadRequest, "", "subnet"},
		{"talkers read raw flows", func(s *Store) error {
			_, err := s.Talkers(context.Background(), TalkersQuery{Customer: "acme", Subnet: "x", Direction: "inbound", From: now.Add(-time.Hour), To: now, Limit: 5})
			return err
		}, nil, "FROM flows WHERE customer = ? AND subnet = ?", ""},
		{"talkers limit", func(s *Store) error {
			_, err := s.Talkers(context.Background(), TalkersQuery{Customer: "acme", Subnet: "x", Direction: "inbound", From: now.Add(-time.Hour), To: now, Limit: 1000})
			return err
		}, ErrBadRequest, "", "limit"},
		{"capacity reads flows_1h", func(s *Store) error {
			_, err := s.Capacity(context.Background(), CapacityQuery{Days: 90})
			return err
		}, nil, "FROM flows_1h", ""},
		{"capacity days", func(s *Store) error {
			_, err := s.Capacity(context.Background(), CapacityQuery{Days: 0})
			return err
		}, ErrBadRequest, "", "days"},
		{"subnet search", func(s *Store) error {
			_, err := s.Subnets(context.Background(), "acme", 7, 50)
			return err
		}, nil, "positionCaseInsensitive(customer, ?)", ""},
		{"incident id", func(s *Store) error {
			_, err := s.Incident(context.Background(), "", "")
			return err
		}, ErrBadRequest, "", "incident id"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{err: errStop}
			s := New(rec, Default(), nil)
			s.now = func() time.Time { return now }
			err := tc.call(s)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !strings.Contains(err.Error(), tc.wantInErr) || len(rec.sql) != 0 {
					t.Fatalf("err %v (queries %d), want %v naming %q and no query", err, len(rec.sql), tc.wantErr, tc.wantInErr)
				}
				return
			}
			if len(rec.sql) != 1 || !strings.Contains(rec.sql[0], tc.wantSQL) {
				t.Fatalf("queries %q, want one with %q", rec.sql, tc.wantSQL)
			}
			// A plain error from the driver (no server exception) is an outage.
			if !errors.Is(err, ErrUnavailable) {
				t.Fatalf("driver error reported as %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		name       string
		err        error
		wantUnavl  bool
		wantResult string
	}{
		{"network", &net.OpError{Op: "dial", Err: errors.New("connection refused")}, true, "unavailable"},
		{"timeout", context.DeadlineExceeded, true, "unavailable"},
		{"login refused", &clickhouse.Exception{Code: 516, Message: "Authentication failed"}, true, "unavailable"},
		{"query bug", &clickhouse.Exception{Code: 47, Message: "Missing columns"}, false, "failed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			s := New(&recorder{err: tc.err}, Default(), reg)
			_, err := s.Subnets(context.Background(), "", 7, 10)
			if errors.Is(err, ErrUnavailable) != tc.wantUnavl || err == nil {
				t.Fatalf("err %v: unavailable=%v, want %v", err, errors.Is(err, ErrUnavailable), tc.wantUnavl)
			}
			if n := testutil.ToFloat64(s.queries.WithLabelValues("subnets", tc.wantResult)); n != 1 {
				t.Fatalf("queries_total{result=%s} = %g, want 1", tc.wantResult, n)
			}
		})
	}
}

// TestClickHouseDown: a store whose server is not there (closed port) or
// whose password is not set answers ErrUnavailable, quickly.
func TestClickHouseDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	t.Setenv("FS_TEST_ANALYST_PW", "x")
	cases := []struct {
		name, addr, pwEnv, wantInErr string
	}{
		{"server down", closed, "FS_TEST_ANALYST_PW", "traffic"},
		{"password env unset", closed, "FS_TEST_UNSET_VARIABLE", "FS_TEST_UNSET_VARIABLE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Default()
			cfg.ClickHouse.Addr = []string{tc.addr}
			cfg.ClickHouse.Password.Env = tc.pwEnv
			s := Open(cfg, nil)
			start := time.Now()
			_, err := s.Traffic(context.Background(), TrafficQuery{Customer: "acme", Subnet: "x", Direction: "inbound", Metric: "bps",
				From: start.Add(-time.Hour), To: start})
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tc.wantInErr) {
				t.Fatalf("err %v, want ErrUnavailable naming %q", err, tc.wantInErr)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Fatalf("took %s to say so", d)
			}
		})
	}
}
