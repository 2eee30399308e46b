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
	held, err := st.HeldFlows(ctx, r3, nil, mid.Add(-10*time.Second), mid.Add(10*time.Second), acme)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 6 {
		t.Fatalf("held %v, want offsets 101..103 x 2 indexes", held)
	}
	found := false
	for _, h := range held {
		found = found || h.Record == store.Record{Partition: 3, Offset: 103, Index: 1}
	}
	if !found {
		t.Fatal("103/1 not held")
	}
	// Without the key filter the answer is the same.
	if h, err := st.HeldFlows(ctx, r3, nil, mid.Add(-10*time.Second), mid.Add(10*time.Second), nil); err != nil || len(h) != 6 {
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
		h, err := st.HeldFlows(ctx, []store.Range{{Partition: tc.p, Lo: 0, Hi: 1000}, {Partition: 9, Lo: 0, Hi: 5}}, nil, tc.tmin, tc.tmax, tc.keys)
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

// TestHeldFlowsByBatch: rows are found by their batch identity (a re-sent
// copy of the batch sits at another offset), with more identities than one
// query's IN list takes; producer ids use all 64 bits.
func TestHeldFlowsByBatch(t *testing.T) {
	conn, db := sinktest.Database(t)
	st := store.New(conn, db)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const producer = 0xffff_0000_ffff_0001
	var rs []rows.Flow
	for i := 0; i < 5000; i++ {
		r := flowRow(t, t0.Add(time.Duration(i%60)*time.Second), int64(i), 0, 1)
		r.ProducerID, r.Sequence = producer, uint64(i+1)
		rs = append(rs, r)
	}
	if err := st.InsertFlows(ctx, rs); err != nil {
		t.Fatal(err)
	}
	// Every other batch, 2500 identities (two queries), plus one unknown.
	var want []store.Batch
	for s := uint64(1); s <= 5000; s += 2 {
		want = append(want, store.Batch{Producer: producer, Sequence: s})
	}
	want = append(want, store.Batch{Producer: producer + 1, Sequence: 1})
	held, err := st.HeldFlows(ctx, nil, want, t0, t0.Add(time.Minute), []store.Key{{Customer: "acme", Subnet: "203.0.113.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2500 {
		t.Fatalf("%d rows held, want 2500", len(held))
	}
	for _, h := range held {
		if h.Producer != producer || h.Sequence%2 != 1 || h.Offset != h.Sequence-1 || h.Fingerprint != store.FingerprintOf(&rs[h.Offset]) {
			t.Fatalf("unexpected row %+v", h)
		}
	}
	// Offsets and identities together: each row once.
	held, err = st.HeldFlows(ctx, []store.Range{{Partition: 3, Lo: 0, Hi: 9}}, want[:3], t0, t0.Add(time.Minute), nil)
	if err != nil || len(held) != 10 {
		t.Fatalf("offsets 0..9 or sequences 1, 3, 5: %d rows (%v), want 10", len(held), err)
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
