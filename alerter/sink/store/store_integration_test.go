//go:build integration

package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/pb"
)

func flowRow(t *testing.T, tr time.Time, off int64, idx int, bytes uint64) rows.Flow {
	t.Helper()
	r, err := rows.FromFlow(&pb.Flow{Type: pb.Flow_IPFIX, TimeReceivedNs: uint64(tr.UnixNano()), Bytes: bytes, Packets: 1,
		Proto: 17, SrcAddr: []byte{198, 51, 100, 1}, DstAddr: []byte{203, 0, 113, 5}, Customer: "acme",
		Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND}, 3, off, idx)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestInsertFlowsPerDayAndHeld: a batch that spans midnight lands in two
// day partitions, HeldFlows finds exactly its records, and the rollups got
// every row once.
func TestInsertFlowsPerDayAndHeld(t *testing.T) {
	conn, db := sinktest.Database(t)
	st := store.New(conn, db)
	ctx := context.Background()
	mid := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	var rs []rows.Flow
	for i := 0; i < 10; i++ {
		rs = append(rs, flowRow(t, mid.Add(time.Duration(i-5)*time.Second), int64(100+i/2), i%2, 1000))
	}
	if err := st.InsertFlows(ctx, rs); err != nil {
		t.Fatal(err)
	}
	parts := sinktest.Count(t, conn, fmt.Sprintf("SELECT uniqExact(partition_id) FROM system.parts WHERE database = '%s' AND table = 'flows' AND active", db))
	if parts != 2 {
		t.Fatalf("%d day partitions, want 2", parts)
	}
	acme := []store.Key{{Customer: "acme", Subnet: "203.0.113.0/24"}}
	r3 := []store.Range{{Partition: 3, Lo: 101, Hi: 103}}
	held, err := st.HeldFlows(ctx, r3, mid.Add(-10*time.Second), mid.Add(10*time.Second), acme)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 6 {
		t.Fatalf("held %v, want offsets 101..103 x 2 indexes", held)
	}
	if _, ok := held[store.Record{Partition: 3, Offset: 103, Index: 1}]; !ok {
		t.Fatal("103/1 not held")
	}
	// Without the key filter the answer is the same.
	if h, err := st.HeldFlows(ctx, r3, mid.Add(-10*time.Second), mid.Add(10*time.Second), nil); err != nil || len(h) != 6 {
		t.Fatalf("without keys: %v, %v", h, err)
	}
	// Another partition, other keys (quotes and backslashes escaped), or
	// another time range hold nothing.
	for _, tc := range []struct {
		p          uint16
		keys       []store.Key
		tmin, tmax time.Time
	}{
		{4, acme, mid.Add(-time.Hour), mid.Add(time.Hour)},
		{3, []store.Key{{Customer: `o'brien\`, Subnet: "203.0.113.0/24"}, {Customer: "acme", Subnet: "x"}}, mid.Add(-time.Hour), mid.Add(time.Hour)},
		{3, acme, mid.Add(time.Hour), mid.Add(2 * time.Hour)},
	} {
		h, err := st.HeldFlows(ctx, []store.Range{{Partition: tc.p, Lo: 0, Hi: 1000}, {Partition: 9, Lo: 0, Hi: 5}}, tc.tmin, tc.tmax, tc.keys)
		if err != nil || len(h) != 0 {
			t.Fatalf("%+v holds %v (%v)", tc, h, err)
		}
	}
	for _, tc := range []struct{ table, q string }{
		{"flows", "SELECT sum(bytes) FROM %s.flows"},
		{"flows_1m", "SELECT sum(bytes) FROM %s.flows_1m"},
		{"flows_1h", "SELECT sum(bytes) FROM %s.flows_1h"},
		{"flows_1m seconds", "SELECT toUInt64(arraySum(sumMap(secondsMap.second, secondsMap.bytes).2)) FROM %s.flows_1m"},
	} {
		if got := sinktest.Count(t, conn, fmt.Sprintf(tc.q, db)); got != 10000 {
			t.Errorf("%s: %d bytes, want 10000", tc.table, got)
		}
	}
}

func TestInsertAlertsAndBaselinesFold(t *testing.T) {
	conn, db := sinktest.Database(t)
	st := store.New(conn, db)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ev := &pb.AnomalyEvent{Id: "inc-1", Kind: pb.AnomalyEvent_START, Class: "udp_flood", Severity: pb.Severity_SEVERITY_WARNING,
		Customer: "acme", Subnet: "203.0.113.0/24", Direction: pb.Direction_DIRECTION_INBOUND,
		StartedAtNs: uint64(t0.UnixNano()), UpdatedAtNs: uint64(t0.UnixNano()), Metric: "pps_udp", Unit: "pps",
		Fingerprint: &pb.Fingerprint{TopDstPorts: []*pb.TopItem{{Key: "53", Packets: 10}}}}
	a, err := rows.FromAnomaly(ev)
	if err != nil {
		t.Fatal(err)
	}
	// The same event twice, as a replay delivers it.
	for i := 0; i < 2; i++ {
		if err := st.InsertAlerts(ctx, []rows.Alert{a}); err != nil {
			t.Fatal(err)
		}
	}
	if n := sinktest.Count(t, conn, "SELECT count() FROM "+db+".alerts FINAL"); n != 1 {
		t.Fatalf("alerts FINAL: %d rows, want the replay folded into 1", n)
	}
	var fp string
	if err := conn.QueryRow(ctx, "SELECT fingerprint FROM "+db+".alerts LIMIT 1").Scan(&fp); err != nil || fp != `{"top_dst_ports":[{"key":"53","packets":"10"}]}` {
		t.Fatalf("fingerprint %q, %v", fp, err)
	}
	bs, err := rows.FromBaseline(&pb.BaselineSnapshot{TimeNs: uint64(t0.UnixNano()), Customer: "acme", Subnet: "203.0.113.0/24",
		Metrics: []*pb.BaselineMetric{{Metric: "bps", Expected: 1e6}, {Metric: "pps", Expected: 1e3}}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := st.InsertBaselines(ctx, bs); err != nil {
			t.Fatal(err)
		}
	}
	if n := sinktest.Count(t, conn, "SELECT count() FROM "+db+".baselines FINAL"); n != 2 {
		t.Fatalf("baselines FINAL: %d rows, want 2", n)
	}
}

func TestErrorClassification(t *testing.T) {
	conn, db := sinktest.Database(t)
	st := store.New(conn, db+"_missing")
	err := st.InsertAlerts(context.Background(), []rows.Alert{{IncidentID: "x", EventKind: 1, Class: 1, Severity: 1}})
	if err == nil {
		t.Fatal("insert into a missing database succeeded")
	}
	if store.IsDataError(err) {
		t.Fatalf("a missing table is not the rows' fault (would dead-letter an outage): %v", err)
	}
	// An enum value the column does not define is refused by the driver
	// before anything is sent: a data error.
	st = store.New(conn, db)
	err = st.InsertAlerts(context.Background(), []rows.Alert{{IncidentID: "x", EventKind: 9, Class: 1, Severity: 1}})
	var de *store.DataError
	if !errors.As(err, &de) || !store.IsDataError(err) {
		t.Fatalf("bad enum: want a DataError, got %v", err)
	}
}
