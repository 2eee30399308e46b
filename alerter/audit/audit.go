// Package audit writes the alerter's audit trail to ClickHouse
// (flowsentry.notifications): every incident step and every notification
// attempt. ClickHouse being slow or down never blocks a notification: rows
// wait in a bounded buffer and are retried; overflow is dropped oldest
// first and counted.
package audit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
)

// Row is one audit record (see schemas/migrations/0010_notifications.sql).
type Row struct {
	Time         time.Time
	IncidentID   string
	Record       string // incident, notification, silence
	Action       string // opened, escalated, resolved, acknowledged, firing, repeat, created, expired, ...
	Receiver     string
	ReceiverKind string
	GroupKey     string
	Attempt      uint16
	Outcome      string
	Error        string
	Status       uint16
	LatencyMs    uint32
	Customer     string
	Subnet       string
	Class        string
	Severity     string
	Actor        string
	Detail       string
}

// Recorder takes rows; it must not block.
type Recorder interface{ Record(Row) }

// Discard is a Recorder that drops everything (audit disabled).
type Discard struct{}

func (Discard) Record(Row) {}

// Opener connects to ClickHouse.
type Opener func(ctx context.Context) (driver.Conn, error)

// Config of the writer.
type Config struct {
	Enabled       bool          `yaml:"enabled"`
	Table         string        `yaml:"table"`
	BatchSize     int           `yaml:"batch_size"`
	FlushInterval time.Duration `yaml:"flush_interval"`
	// BufferRows bounds memory while ClickHouse is down.
	BufferRows int `yaml:"buffer_rows"`
}

// DefaultConfig writes to flowsentry.notifications every second.
func DefaultConfig() Config {
	return Config{Enabled: true, Table: "flowsentry.notifications", BatchSize: 5000, FlushInterval: time.Second, BufferRows: 200_000}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	switch {
	case c.Table == "":
		return fmt.Errorf("%s.table: required", prefix)
	case c.BatchSize <= 0:
		return fmt.Errorf("%s.batch_size: must be positive", prefix)
	case c.FlushInterval <= 0:
		return fmt.Errorf("%s.flush_interval: must be positive", prefix)
	case c.BufferRows < c.BatchSize:
		return fmt.Errorf("%s.buffer_rows: must be at least batch_size", prefix)
	}
	return nil
}

// Writer buffers rows and inserts them in batches.
type Writer struct {
	cfg     Config
	open    Opener
	alerter string
	log     *slog.Logger

	mu    sync.Mutex
	buf   []Row
	drops uint64 // rows dropped from the front so far
	conn  driver.Conn
	wake  chan struct{}

	written, dropped, errors prometheus.Counter
	buffered                 prometheus.GaugeFunc
}

// NewWriter returns a writer; alerter names this instance in every row.
func NewWriter(cfg Config, open Opener, alerter string, reg prometheus.Registerer, log *slog.Logger) *Writer {
	w := &Writer{cfg: cfg, open: open, alerter: alerter, log: log, wake: make(chan struct{}, 1)}
	w.written = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_audit_rows_written_total",
		Help: "Audit rows inserted into ClickHouse."})
	w.dropped = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_audit_rows_dropped_total",
		Help: "Audit rows dropped because the buffer was full (ClickHouse down too long)."})
	w.errors = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_audit_write_errors_total",
		Help: "Failed audit inserts (retried)."})
	w.buffered = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowsentry_alerter_audit_rows_buffered",
		Help: "Audit rows waiting for ClickHouse."}, func() float64 { return float64(w.Buffered()) })
	if reg != nil {
		reg.MustRegister(w.written, w.dropped, w.errors, w.buffered)
	}
	return w
}

// Record queues a row; never blocks.
func (w *Writer) Record(r Row) {
	w.mu.Lock()
	if len(w.buf) >= w.cfg.BufferRows {
		// Keep the newest: the recent past is what an operator asks about.
		n := len(w.buf) - w.cfg.BufferRows + 1
		w.buf = append(w.buf[:0], w.buf[n:]...)
		w.drops += uint64(n)
		w.dropped.Add(float64(n))
	}
	w.buf = append(w.buf, r)
	full := len(w.buf) >= w.cfg.BatchSize
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Buffered is the number of rows waiting.
func (w *Writer) Buffered() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.buf)
}

// Run flushes until ctx ends, backing off while ClickHouse fails, then
// makes a last attempt.
func (w *Writer) Run(ctx context.Context) {
	wait := w.cfg.FlushInterval
	for {
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			if err := w.Flush(fctx); err != nil {
				w.log.Warn("audit rows not written at shutdown", "rows", w.Buffered(), "err", err)
			}
			cancel()
			w.close()
			return
		case <-t.C:
		case <-w.wake:
			t.Stop()
		}
		if err := w.Flush(ctx); err != nil {
			w.errors.Inc()
			wait = min(wait*2, 30*time.Second)
			w.log.Warn("audit insert failed; rows kept for retry", "rows", w.Buffered(), "retry_in", wait, "err", err)
			continue
		}
		wait = w.cfg.FlushInterval
	}
}

// Flush inserts everything buffered, batch by batch.
func (w *Writer) Flush(ctx context.Context) error {
	for {
		w.mu.Lock()
		n := min(len(w.buf), w.cfg.BatchSize)
		batch := append([]Row(nil), w.buf[:n]...)
		drops := w.drops
		w.mu.Unlock()
		if n == 0 {
			return nil
		}
		if err := w.insert(ctx, batch); err != nil {
			w.close()
			return err
		}
		w.mu.Lock()
		// New rows only go to the back and drops only take from the
		// front, so the part of the batch still buffered is at the front.
		left := max(0, n-int(w.drops-drops))
		w.buf = append(w.buf[:0], w.buf[min(left, len(w.buf)):]...)
		w.mu.Unlock()
		w.written.Add(float64(n))
	}
}

func (w *Writer) insert(ctx context.Context, rows []Row) error {
	w.mu.Lock()
	conn := w.conn
	w.mu.Unlock()
	if conn == nil {
		c, err := w.open(ctx)
		if err != nil {
			return err
		}
		w.mu.Lock()
		w.conn, conn = c, c
		w.mu.Unlock()
	}
	b, err := conn.PrepareBatch(ctx, "INSERT INTO "+w.cfg.Table+
		" (time, incident_id, record, action, receiver, receiver_kind, group_key, attempt, outcome, error, status,"+
		" latency_ms, customer, subnet, class, severity, actor, detail, alerter)")
	if err != nil {
		return fmt.Errorf("audit prepare: %w", err)
	}
	for _, r := range rows {
		if err := b.Append(r.Time, r.IncidentID, r.Record, r.Action, r.Receiver, r.ReceiverKind, r.GroupKey, r.Attempt,
			r.Outcome, r.Error, r.Status, r.LatencyMs, r.Customer, r.Subnet, r.Class, r.Severity, r.Actor, r.Detail, w.alerter); err != nil {
			_ = b.Abort()
			return fmt.Errorf("audit append: %w", err)
		}
	}
	if err := b.Send(); err != nil {
		return fmt.Errorf("audit insert: %w", err)
	}
	return nil
}

func (w *Writer) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		_ = w.conn.Close()
		w.conn = nil
	}
}
