package audit

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestBufferWhileClickHouseDown(t *testing.T) {
	down := errors.New("connection refused")
	opens := 0
	cfg := Config{Enabled: true, Table: "t", BatchSize: 2, FlushInterval: 10 * time.Millisecond, BufferRows: 3}
	w := NewWriter(cfg, func(context.Context) (driver.Conn, error) { opens++; return nil, down }, "a1",
		prometheus.NewRegistry(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	for i := range 5 {
		w.Record(Row{IncidentID: string(rune('a' + i))})
	}
	if err := w.Flush(context.Background()); !errors.Is(err, down) {
		t.Fatalf("flush: %v", err)
	}
	if w.Buffered() != 3 || testutil.ToFloat64(w.dropped) != 2 {
		t.Fatalf("buffered %d dropped %v", w.Buffered(), testutil.ToFloat64(w.dropped))
	}
	if w.buf[0].IncidentID != "c" {
		t.Fatalf("oldest should go first, front is %q", w.buf[0].IncidentID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	w.Record(Row{IncidentID: "f"}) // never blocks although ClickHouse is down
	if time.Since(start) > 50*time.Millisecond {
		t.Fatal("Record blocked")
	}
	<-done
	if opens < 2 || testutil.ToFloat64(w.errors) < 1 {
		t.Fatalf("no retry: opens %d", opens)
	}
	if err := (Config{Table: "t", BatchSize: 10, FlushInterval: time.Second, BufferRows: 5}).Validate("audit"); err == nil {
		t.Fatal("buffer_rows < batch_size accepted")
	}
}
