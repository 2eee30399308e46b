// Package history answers the operator console's questions from ClickHouse:
// a subnet's traffic against its baseline band, top talkers, subnet search,
// capacity (p95 and growth) and an incident's timeline and notifications.
// It reads as the analyst user, picks the smallest table that answers
// (flows_1m for hours, flows_1h for days, raw flows only for a bounded
// window) and sorts its failures: ErrUnavailable (ClickHouse down, slow or
// refusing the user) and ErrBadRequest (a question it will not ask).
package history

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

var (
	// ErrUnavailable: ClickHouse cannot answer now (down, timeout, login refused).
	ErrUnavailable = errors.New("clickhouse unavailable")
	// ErrBadRequest: the question is invalid (unknown metric, range too long, ...).
	ErrBadRequest = errors.New("bad request")
)

// Querier is the part of a ClickHouse connection the store uses.
type Querier interface {
	Query(ctx context.Context, query string, args ...any) (driver.Rows, error)
}

// Store runs the console's queries.
type Store struct {
	cfg Config
	db  Querier
	// down is why there is no connection at all (e.g. the password's
	// environment variable is not set): every query reports it.
	down    error
	now     func() time.Time
	queries *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

// Open builds a store from cfg. It does not connect (clickhouse-go dials on
// first use and re-dials after errors), so ClickHouse down at start costs
// the console nothing but 503s until it is back; a config that cannot give
// a connection (missing secret) is kept as the reason of those 503s.
func Open(cfg Config, reg prometheus.Registerer) *Store {
	opts, err := cfg.ClickHouse.Options("console.clickhouse")
	var db Querier
	if err == nil {
		var conn driver.Conn
		if conn, err = clickhouse.Open(opts); err == nil {
			db = conn
		}
	}
	s := New(db, cfg, reg)
	s.down = err
	return s
}

// New wraps an open connection (tests pass their own).
func New(db Querier, cfg Config, reg prometheus.Registerer) *Store {
	s := &Store{cfg: cfg, db: db, now: time.Now,
		queries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "flowsentry_alerter_console_queries_total",
			Help: "Console ClickHouse queries by query and result (ok, unavailable, failed)."}, []string{"query", "result"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "flowsentry_alerter_console_query_seconds",
			Help: "Console ClickHouse query time.", Buckets: prometheus.ExponentialBuckets(0.005, 4, 7)}, []string{"query"}),
	}
	if reg != nil {
		reg.MustRegister(s.queries, s.seconds)
	}
	return s
}

// Err is why the store cannot query at all (nil when it can try).
func (s *Store) Err() error { return s.down }

// query runs one query and hands each row to scan. name labels metrics
// and errors.
func (s *Store) query(ctx context.Context, name string, scan func(driver.Rows) error, sql string, args ...any) error {
	if s.down != nil || s.db == nil {
		s.queries.WithLabelValues(name, "unavailable").Inc()
		reason := s.down
		if reason == nil {
			reason = errors.New("no connection")
		}
		return fmt.Errorf("%w: %v", ErrUnavailable, reason)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.QueryTimeout)
	defer cancel()
	start := time.Now()
	err := s.run(ctx, scan, sql, args...)
	s.seconds.WithLabelValues(name).Observe(time.Since(start).Seconds())
	if err == nil {
		s.queries.WithLabelValues(name, "ok").Inc()
		return nil
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) && !loginRefused(ex.Code) {
		// The server answered with an error: a bug in the query or the
		// schema, not an outage.
		s.queries.WithLabelValues(name, "failed").Inc()
		return fmt.Errorf("%s query failed: %w", name, err)
	}
	s.queries.WithLabelValues(name, "unavailable").Inc()
	return fmt.Errorf("%w: %s: %v", ErrUnavailable, name, err)
}

func (s *Store) run(ctx context.Context, scan func(driver.Rows) error, sql string, args ...any) error {
	rows, err := s.db.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// loginRefused: the user cannot read (unknown user, wrong password, no
// access to the database): the console is unavailable, not buggy.
func loginRefused(code int32) bool {
	switch code {
	case 81, 192, 193, 194, 195, 291, 497, 516:
		return true
	}
	return false
}

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// unix is how times are bound: toDateTime(?) with whole seconds is the
// same on 18.16 and current releases, whatever the server's time zone.
func unix(t time.Time) int64 { return t.Unix() }
