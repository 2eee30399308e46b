//go:build integration

package audit

import (
	"context"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/migrations"
	"github.com/prometheus/client_golang/prometheus"
)

// ensureTable applies this module's migration (0010) only: the shared
// server's migration bookkeeping is the schema runner's business.
func ensureTable(t *testing.T, admin driver.Conn) {
	t.Helper()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		if m.Version != 10 {
			continue
		}
		for _, s := range m.Statements {
			if err := admin.Exec(context.Background(), s); err != nil {
				t.Fatalf("0010: %v", err)
			}
		}
		return
	}
	t.Fatal("migration 0010 not embedded")
}

func TestWriterIntoClickHouse(t *testing.T) {
	admin := itest.ClickHouse(t)
	ensureTable(t, admin)
	if os.Getenv("FLOWSENTRY_CH_WRITER_PASSWORD") == "" {
		t.Setenv("FLOWSENTRY_CH_WRITER_PASSWORD", "writer-dev")
	}
	cfg := chclient.Default()
	if a := os.Getenv("FLOWSENTRY_CLICKHOUSE"); a != "" {
		cfg.Addr = []string{a}
	}
	opts, err := cfg.Options("clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter(DefaultConfig(), func(context.Context) (driver.Conn, error) { return clickhouse.Open(opts) }, "itest",
		prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	id := "itest-" + itest.RandomID()
	now := time.Now().UTC().Truncate(time.Second)
	w.Record(Row{Time: now, IncidentID: id, Record: "incident", Action: "opened", Customer: "acme", Severity: "critical"})
	for a := uint16(1); a <= 3; a++ {
		out := "retry"
		if a == 3 {
			out = "delivered"
		}
		w.Record(Row{Time: now, IncidentID: id, Record: "notification", Action: "firing", Receiver: "noc-pagerduty",
			ReceiverKind: "pagerduty", Attempt: a, Outcome: out, Status: 503, LatencyMs: 1234, Customer: "acme"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := w.Flush(ctx); err != nil {
		t.Fatalf("flush as flowsentry_writer: %v", err)
	}
	var n, delivered uint64
	var alerter string
	row := admin.QueryRow(ctx, `SELECT count(), countIf(outcome = 'delivered'), any(alerter) FROM flowsentry.notifications WHERE incident_id = ?`, id)
	if err := row.Scan(&n, &delivered, &alerter); err != nil {
		t.Fatal(err)
	}
	if n != 4 || delivered != 1 || alerter != "itest" {
		t.Fatalf("rows %d delivered %d alerter %q", n, delivered, alerter)
	}
	if w.Buffered() != 0 {
		t.Fatal("buffer not drained")
	}
}
