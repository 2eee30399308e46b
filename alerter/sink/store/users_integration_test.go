//go:build integration

package store_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/sink/retention"
	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
)

// connectAs opens the real server's flowsentry database as one of the
// users deploy/clickhouse/users.d defines (password from the environment,
// else the local development default).
func connectAs(t *testing.T, user, pwEnv, pwDefault string) driver.Conn {
	t.Helper()
	itest.ClickHouse(t) // skips (or fails in CI) when the server is down
	addr := os.Getenv("FLOWSENTRY_CLICKHOUSE")
	if addr == "" {
		addr = "127.0.0.1:9000"
	}
	pw := os.Getenv(pwEnv)
	if pw == "" {
		pw = pwDefault
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 5 * time.Second,
		Auth: clickhouse.Auth{Database: "flowsentry", Username: user, Password: pw}})
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = conn.Ping(ctx)
		cancel()
	}
	if err != nil {
		var ex *clickhouse.Exception
		if errors.As(err, &ex) && (ex.Code == 192 || ex.Code == 193 || ex.Code == 516) && !itest.InCI() {
			t.Skipf("user %s not set up on this server (deploy/clickhouse/users.d): %v", user, err)
		}
		t.Fatalf("connect as %s: %v", user, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func code(err error) int32 {
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return ex.Code
	}
	return -1
}

// TestWriterWritesAndDropsPartitions: the sink's user inserts flows and can
// drop partitions (retention runs as the sink). The row lands on a random
// day of 2000 so that no real query sees it, and its partitions are dropped
// again by the retention job, as the writer.
func TestWriterWritesAndDropsPartitions(t *testing.T) {
	w := connectAs(t, "flowsentry_writer", "FLOWSENTRY_CH_WRITER_PASSWORD", "writer-dev")
	ctx := context.Background()
	n, _ := rand.Int(rand.Reader, big.NewInt(360))
	day := time.Date(2000, 1, 1, 12, 0, 0, 0, time.UTC).AddDate(0, 0, int(n.Int64()))
	marker := "itest-users-" + itest.RandomID()
	r, err := rows.FromFlow(&pb.Flow{TimeReceivedNs: uint64(day.UnixNano()), Bytes: 42, Customer: marker, Subnet: "192.0.2.0/24"}, 65535, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.New(w, "flowsentry").InsertFlows(ctx, []rows.Flow{r}); err != nil {
		t.Fatalf("writer cannot insert into flowsentry.flows: %v", err)
	}
	var got uint64
	if err := w.QueryRow(ctx, "SELECT sum(bytes) FROM flowsentry.flows_1m WHERE customer = ?", marker).Scan(&got); err != nil || got != 42 {
		t.Fatalf("writer reads back %d from flows_1m (%v), want 42", got, err)
	}
	job := &retention.Job{Conn: w, DB: "flowsentry", Cfg: retention.Config{KeepDays: map[string]int{"flows": 1, "flows_1m": 1}}}
	// "now" is the day after the row's day: only the row's partition and
	// anything older (other runs' leftovers from 2000) can expire.
	dropped, err := job.RunOnce(ctx, day.AddDate(0, 0, 2))
	if err != nil {
		t.Fatalf("retention as writer: %v", err)
	}
	want := fmt.Sprintf("%04d%02d%02d", day.Year(), day.Month(), day.Day())
	seen := 0
	for _, d := range dropped {
		if d.Partition == want {
			seen++
		}
	}
	if seen != 2 {
		t.Fatalf("dropped %v, want partition %s of flows and flows_1m", dropped, want)
	}
	// Outside its database the writer is refused.
	if err := w.Exec(ctx, "CREATE TABLE default.sink_itest_"+itest.RandomID()+" (x UInt8) ENGINE = Memory"); err == nil {
		t.Fatal("writer created a table in database default")
	}
	// flows_1h is partitioned by month: other runs may share the month, so
	// its partition goes as admin without checking.
	admin := itest.ClickHouse(t)
	_ = admin.Exec(ctx, fmt.Sprintf("ALTER TABLE flowsentry.flows_1h DROP PARTITION ID '%04d%02d'", day.Year(), day.Month()))
}

// TestAnalystIsReadOnly: people and dashboards read, never write.
func TestAnalystIsReadOnly(t *testing.T) {
	a := connectAs(t, "flowsentry_analyst", "FLOWSENTRY_CH_ANALYST_PASSWORD", "analyst-dev")
	ctx := context.Background()
	var n uint64
	if err := a.QueryRow(ctx, "SELECT count() FROM flowsentry.flows").Scan(&n); err != nil {
		t.Fatalf("analyst cannot read flows: %v", err)
	}
	r, _ := rows.FromFlow(&pb.Flow{TimeReceivedNs: uint64(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()), Customer: "itest-analyst"}, 65535, 0, 0)
	err := store.New(a, "flowsentry").InsertFlows(ctx, []rows.Flow{r})
	if err == nil {
		t.Fatal("analyst inserted into flowsentry.flows")
	}
	if c := code(err); c != 164 { // READONLY
		t.Errorf("insert refused with %v (code %d), want READONLY (164)", err, c)
	}
	for _, q := range []string{
		"ALTER TABLE flowsentry.flows DROP PARTITION ID '20000101'",
		"CREATE TABLE flowsentry.analyst_was_here (x UInt8) ENGINE = Memory",
		"DROP TABLE flowsentry.flows_1m",
		"TRUNCATE TABLE flowsentry.alerts",
	} {
		if err := a.Exec(ctx, q); err == nil {
			t.Errorf("analyst ran %q", q)
		} else if c := code(err); c != 164 {
			t.Errorf("%q refused with code %d (%v), want READONLY (164)", q, c, err)
		}
	}
}
