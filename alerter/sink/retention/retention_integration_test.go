//go:build integration

package retention_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/retention"
	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
)

// TestRetentionDropsOnlyExpiredPartitions fills flows (day partitions) and
// flows_1h (month partitions) around the cutoff and checks what survives.
func TestRetentionDropsOnlyExpiredPartitions(t *testing.T) {
	conn, db := sinktest.Database(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 27, 15, 0, 0, 0, time.UTC)
	// keep 30 days: cutoff 2026-10-28 00:00; keep 60 days for flows_1h:
	// cutoff 2026-09-28, so September is kept (its last days are inside),
	// August goes.
	days := []string{"2026-10-26 23:59:59", "2026-10-27 12:00:00", "2026-10-28 00:00:00", "2026-11-27 14:00:00", "2026-08-31 23:00:00", "2026-09-01 00:00:00"}
	for _, d := range days {
		if err := conn.Exec(ctx, fmt.Sprintf("INSERT INTO %s.flows (time_received, customer, bytes) SELECT toDateTime('%s'), 'acme', 1 FROM system.numbers LIMIT 3", db, d)); err != nil {
			t.Fatal(err)
		}
	}
	job := &retention.Job{Conn: conn, DB: db, Cfg: retention.Config{Enabled: true, Interval: time.Hour,
		KeepDays: map[string]int{"flows": 30, "flows_1h": 60, "no_such_table": 5}}}
	var logged []string
	job.OnDrop = func(d retention.Dropped) { logged = append(logged, d.Table+"/"+d.Partition) }
	dropped, err := job.RunOnce(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range dropped {
		got = append(got, d.Table+"/"+d.Partition)
		if d.Table == "flows" && d.Rows != 3 {
			t.Errorf("%s/%s: %d rows reported, want 3", d.Table, d.Partition, d.Rows)
		}
	}
	slices.Sort(got)
	want := []string{"flows/20260831", "flows/20260901", "flows/20261026", "flows/20261027", "flows_1h/202608"}
	if !slices.Equal(got, want) {
		t.Fatalf("dropped %v, want %v", got, want)
	}
	slices.Sort(logged)
	if !slices.Equal(logged, got) {
		t.Fatalf("OnDrop saw %v", logged)
	}
	left := sinktest.Count(t, conn, "SELECT count() FROM "+db+".flows")
	if left != 6 {
		t.Fatalf("%d flows left, want 6 (2026-10-28 and 2026-11-27)", left)
	}
	if n := sinktest.Count(t, conn, "SELECT sum(flows) FROM "+db+".flows_1h"); n != 15 {
		t.Fatalf("flows_1h holds %d flows, want 15 (Sep 3 + Oct 9 + Nov 3 kept; Aug dropped)", n)
	}
	// A second run has nothing to do.
	if again, err := job.RunOnce(ctx, now); err != nil || len(again) != 0 {
		t.Fatalf("second run dropped %v, %v", again, err)
	}
}
