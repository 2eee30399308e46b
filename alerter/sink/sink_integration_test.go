//go:build integration

package sink

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/migrations"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// TestSinkExactlyOnceAcrossCrash: the first sink writes batches but
// "crashes" (stops without committing) at its third commit; a second sink
// of the same group replays from the committed offsets. Before either ran,
// part of one message (one day partition of a batch) was already written,
// as an insert cut between two days leaves it. Every flow ends up exactly
// once in flows and in the rollups.
func TestSinkExactlyOnceAcrossCrash(t *testing.T) {
	e := newEnv(t)
	flows, bytes := produceFlows(t, e.brokers, e.flows, 600)

	// A half-written earlier insert: one day's rows of partition 0's first
	// three messages.
	var pre []rows.Flow
	firstDay := 0
	for _, x := range readRows(t, e.brokers, e.flows, 0, 3) {
		if firstDay == 0 {
			firstDay = x.Day()
		}
		if x.Day() == firstDay {
			pre = append(pre, x)
		}
	}
	if err := store.New(e.conn, e.db).InsertFlows(context.Background(), pre); err != nil {
		t.Fatal(err)
	}
	if len(pre) == 0 {
		t.Fatal("nothing to pre-insert")
	}
	t.Logf("pre-inserted %d rows of day %d", len(pre), firstDay)

	group := "sink-itest-" + itest.RandomID()
	cfg := e.config(group)
	var mu sync.Mutex
	commits := 0
	crashed := make(chan struct{})
	first := e.start(t, cfg, func(topic string, _ map[int]int64) error {
		if topic != e.flows {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		commits++
		if commits == 3 {
			close(crashed)
		}
		if commits >= 3 {
			return errStopped
		}
		return nil
	})
	select {
	case <-crashed:
	case <-time.After(40 * time.Second):
		t.Fatal("first sink never reached its third commit")
	}
	first.stop(t)
	held := e.count(t, "SELECT count() FROM %s.flows")
	t.Logf("after the crash ClickHouse holds %d of %d flows", held, flows)

	second := e.start(t, cfg, nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)
	e.checkExactlyOnce(t, flows, bytes)
	skipped := testutil.ToFloat64(second.m.ReplaySkipped.WithLabelValues("flows")) + testutil.ToFloat64(first.m.ReplaySkipped.WithLabelValues("flows"))
	if skipped < float64(len(pre)) {
		t.Errorf("replay skipped %v rows; at least the %d pre-inserted ones must have been", skipped, len(pre))
	}
	time.Sleep(3 * second.s.LagInterval)
	for p := 0; p < 4; p++ {
		if lag := testutil.ToFloat64(second.m.Lag.WithLabelValues(e.flows, strconv.Itoa(p))); lag != 0 {
			t.Errorf("partition %d: lag %v after catching up", p, lag)
		}
	}
}

// TestSinkAlertsBaselinesAndDeadLetters: events and snapshots land in
// their tables (a re-delivered event folds), invalid records go to the
// dead-letter topic with the error, and the offsets move past them.
func TestSinkAlertsBaselinesAndDeadLetters(t *testing.T) {
	e := newEnv(t)
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	ev := func(kind pb.AnomalyEvent_Kind, seq uint32) kafka.Message {
		v, _ := proto.Marshal(&pb.AnomalyEvent{Id: "inc-1", Kind: kind, Seq: seq, Class: "syn_flood",
			Severity: pb.Severity_SEVERITY_CRITICAL, Customer: "acme", Subnet: "203.0.113.0/24",
			StartedAtNs: uint64(t0.UnixNano()), UpdatedAtNs: uint64(t0.Add(time.Duration(seq) * time.Minute).UnixNano()),
			Fingerprint: &pb.Fingerprint{TopDstPorts: []*pb.TopItem{{Key: "80", Packets: 5}}}})
		return kafka.Message{Key: []byte("inc-1"), Value: v}
	}
	write := func(topic string, msgs ...kafka.Message) {
		w := &kafka.Writer{Addr: kafka.TCP(e.brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll}
		defer w.Close()
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			t.Fatal(err)
		}
	}
	write(e.anomalies, ev(pb.AnomalyEvent_START, 0), ev(pb.AnomalyEvent_UPDATE, 1), ev(pb.AnomalyEvent_UPDATE, 1),
		ev(pb.AnomalyEvent_END, 2), kafka.Message{Key: []byte("inc-2"), Value: []byte("not protobuf \xff\xff")})
	snap, _ := proto.Marshal(&pb.BaselineSnapshot{TimeNs: uint64(t0.UnixNano()), Customer: "acme", Subnet: "203.0.113.0/24",
		Metrics: []*pb.BaselineMetric{{Metric: "bps", Expected: 1e6, P95: 2e6}, {Metric: "pps", Expected: 1e3}}})
	write(e.baselines, kafka.Message{Key: []byte("203.0.113.0/24"), Value: snap})
	good := &pb.Flow{TimeReceivedNs: uint64(t0.UnixNano()), Bytes: 10, Customer: "acme", Subnet: "203.0.113.0/24"}
	bad := &pb.Flow{TimeReceivedNs: uint64(t0.UnixNano()), Bytes: 20, SrcAddr: []byte{1, 2, 3}, Customer: "acme", Subnet: "203.0.113.0/24"}
	fb, _ := proto.Marshal(&pb.FlowBatch{Flows: []*pb.Flow{good, bad}})
	write(e.flows, kafka.Message{Key: []byte("203.0.113.0/24"), Value: fb})

	group := "sink-itest-" + itest.RandomID()
	s := e.start(t, e.config(group), nil)
	waitCommitted(t, e.brokers, group, e.anomalies, 2, 30*time.Second)
	waitCommitted(t, e.brokers, group, e.baselines, 2, 30*time.Second)
	waitCommitted(t, e.brokers, group, e.flows, 4, 30*time.Second)

	if n := e.count(t, "SELECT count() FROM %s.alerts FINAL"); n != 3 {
		t.Errorf("alerts: %d events, want 3 (the duplicate update folded)", n)
	}
	if n := e.count(t, "SELECT count() FROM %s.alerts WHERE event_kind = 'end' AND fingerprint LIKE '%%\"top_dst_ports\"%%'"); n != 1 {
		t.Errorf("end event with its fingerprint JSON: %d rows", n)
	}
	if n := e.count(t, "SELECT count() FROM %s.baselines FINAL"); n != 2 {
		t.Errorf("baselines: %d rows, want 2", n)
	}
	if n := e.count(t, "SELECT sum(bytes) FROM %s.flows"); n != 10 {
		t.Errorf("flows: %d bytes, want the valid flow's 10", n)
	}
	// Dead letters: the garbage event and the flow with a 3-byte address.
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.dl, Partition: 0, MaxBytes: 1 << 20})
	defer r.Close()
	found := map[string]string{}
	for i := 0; i < 2; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("dead letter %d: %v", i, err)
		}
		h := map[string]string{}
		for _, x := range m.Headers {
			h[x.Key] = string(x.Value)
		}
		found[h["source-topic"]+"/"+h["source-index"]] = h["error"]
		if h["source-topic"] == e.flows {
			var got pb.FlowBatch
			if err := proto.Unmarshal(m.Value, &got); err != nil || len(got.Flows) != 1 || got.Flows[0].Bytes != 20 {
				t.Errorf("flow dead letter is not the bad flow: %v %v", err, &got)
			}
		}
	}
	if found[e.flows+"/1"] == "" || found[e.anomalies+"/-1"] == "" {
		t.Errorf("dead letters %v; want the flow (index 1) and the anomaly (whole message), each with its error", found)
	}
	if n := testutil.ToFloat64(s.m.DeadLetters.WithLabelValues(e.flows)) + testutil.ToFloat64(s.m.DeadLetters.WithLabelValues(e.anomalies)); n != 2 {
		t.Errorf("dead_letters_total = %v, want 2", n)
	}
}

// TestLagFromBrokers: lag is the partition's end minus the committed
// offset, or minus its first offset before any commit.
func TestLagFromBrokers(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	topic := itest.Topic(t, brokers, "sink-lag", 2)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{}, RequiredAcks: kafka.RequireAll}
	var msgs []kafka.Message
	for i := 0; i < 10; i++ {
		msgs = append(msgs, kafka.Message{Key: []byte("k"), Value: []byte{byte(i)}}) // one key: one partition
	}
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	w.Close()
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = brokers
	s := New(cfg, nil, nil, nil, nil, NewMetrics(nil), logger(t))
	p := kafka.Murmur2Balancer{}.Balance(kafka.Message{Key: []byte("k")}, 0, 1)
	other := 1 - p
	s.acked.set(topic, p, 3)
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	req := func(f func(int) kafka.OffsetRequest) *kafka.ListOffsetsRequest {
		return &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: {f(0), f(1)}}}
	}
	if err := s.measureLag(context.Background(), client, req(kafka.FirstOffsetOf), req(kafka.LastOffsetOf)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.metrics.Lag.WithLabelValues(topic, strconv.Itoa(p))); got != 7 {
		t.Errorf("lag of the written partition = %v, want 10 - 3 = 7", got)
	}
	if got := testutil.ToFloat64(s.metrics.Lag.WithLabelValues(topic, strconv.Itoa(other))); got != 0 {
		t.Errorf("lag of the empty partition = %v, want 0", got)
	}
	s.acked.clear()
	if err := s.measureLag(context.Background(), client, req(kafka.FirstOffsetOf), req(kafka.LastOffsetOf)); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(s.metrics.Lag.WithLabelValues(topic, strconv.Itoa(p))); got != 10 {
		t.Errorf("lag without a commit = %v, want 10", got)
	}
}

// withoutViews runs fn with the rollups' materialized views dropped, then
// creates them again: whatever fn inserts into flows is what a server
// killed inside an INSERT keeps, the flows part without the views' parts.
func (e env) withoutViews(t *testing.T, fn func()) {
	t.Helper()
	ctx := context.Background()
	for _, v := range []string{"flows_1m_mv", "flows_1h_mv"} {
		if err := e.conn.Exec(ctx, "DROP TABLE "+e.db+"."+v); err != nil {
			t.Fatal(err)
		}
	}
	fn()
	all, err := migrations.All()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range all {
		for _, s := range m.Statements {
			if strings.Contains(s, "MATERIALIZED VIEW") {
				if err := e.conn.Exec(ctx, sinktest.Rewrite(s, e.db)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// TestSinkRepairsRollupsOfACutInsert: an earlier owner's INSERT of the
// first messages of two partitions kept its flows part and lost its rollup
// parts (what a server killed inside the INSERT leaves; simulated without a
// kill). The sink skips those flows on replay, as it must, and completes the
// rollups: every cell equals what flows holds.
func TestSinkRepairsRollupsOfACutInsert(t *testing.T) {
	e := newEnv(t)
	flows, bytes := produceFlows(t, e.brokers, e.flows, 400)
	pre := append(readRows(t, e.brokers, e.flows, 0, 6), readRows(t, e.brokers, e.flows, 1, 6)...)
	e.withoutViews(t, func() {
		if err := store.New(e.conn, e.db).InsertFlows(context.Background(), pre); err != nil {
			t.Fatal(err)
		}
	})
	if n := e.count(t, "SELECT count() FROM %s.flows_1m"); n != 0 {
		t.Fatalf("flows_1m holds %d rows; the pre-inserted flows must have no rollup rows", n)
	}

	group := "sink-itest-" + itest.RandomID()
	s := e.start(t, e.config(group), nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)
	e.checkExactlyOnce(t, flows, bytes)
	e.checkRollupsMatchFlows(t)
	if n := testutil.ToFloat64(s.m.ReplaySkipped.WithLabelValues("flows")); n != float64(len(pre)) {
		t.Errorf("replay skipped %v rows, want the %d pre-inserted", n, len(pre))
	}
	for _, table := range []string{"flows_1m", "flows_1h"} {
		if n := testutil.ToFloat64(s.m.RollupRepaired.WithLabelValues(table)); n == 0 {
			t.Errorf("%s: no cell repaired", table)
		}
		if n := testutil.ToFloat64(s.m.RollupOver.WithLabelValues(table)); n != 0 {
			t.Errorf("%s: %v cells over", table, n)
		}
	}
}

// TestSinkRecreatedTopic: the flows topic is deleted and created again and
// new flows are produced to it: the same partitions, offsets and indexes,
// the same receive times, other content. The sink (same group) inserts
// them all instead of taking them for the old topic's rows.
func TestSinkRecreatedTopic(t *testing.T) {
	e := newEnv(t)
	group := "sink-itest-" + itest.RandomID()
	cfg := e.config(group)
	n1, b1 := produceFlowsFrom(t, e.brokers, e.flows, 200, 1000)
	first := e.start(t, cfg, nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)
	first.stop(t)

	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 20 * time.Second}
	ctx := context.Background()
	if _, err := client.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{e.flows}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{
			Topics: []kafka.TopicConfig{{Topic: e.flows, NumPartitions: 4, ReplicationFactor: 1}}})
		if err == nil && resp.Errors[e.flows] == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recreate %s: %v %v", e.flows, err, resp)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		md, err := client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{e.flows}})
		ready := err == nil && len(md.Topics) == 1 && md.Topics[0].Error == nil && len(md.Topics[0].Partitions) == 4
		for _, p := range md.Topics[0].Partitions {
			ready = ready && p.Leader.ID >= 0 && p.Error == nil
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("recreated %s has no leaders: %v", e.flows, err)
		}
	}
	n2, b2 := produceFlowsFrom(t, e.brokers, e.flows, 200, 5000)

	second := e.start(t, cfg, nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)
	if n := e.count(t, "SELECT count() FROM %s.flows"); n != uint64(n1+n2) {
		t.Errorf("flows holds %d rows, want %d old + %d new", n, n1, n2)
	}
	for _, table := range []string{"flows", "flows_1m", "flows_1h"} {
		if b := e.count(t, "SELECT sum(bytes) FROM %s."+table); b != b1+b2 {
			t.Errorf("%s: %d bytes, want %d + %d", table, b, b1, b2)
		}
	}
	e.checkRollupsMatchFlows(t)
	reused := testutil.ToFloat64(second.m.ReplayReused.WithLabelValues("flows"))
	t.Logf("old topic %d flows, new topic %d flows; replay check found %v positions reused", n1, n2, reused)
	if reused == 0 {
		t.Error("replay_reused_positions_total stayed 0: the recreated topic was not noticed")
	}
	if n := testutil.ToFloat64(second.m.ReplaySkipped.WithLabelValues("flows")); n != 0 {
		t.Errorf("replay skipped %v rows of the new topic", n)
	}
}

// TestCheckTopics: a configured topic that does not exist stops the sink at
// start with the key named (an ACL refusal is TestSecurity's, in
// schemas/securitytest: it needs the secured broker).
func TestCheckTopics(t *testing.T) {
	e := newEnv(t)
	cfg := e.config("sink-itest-" + itest.RandomID())
	s := New(cfg, nil, nil, nil, nil, NewMetrics(nil), logger(t))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := s.checkTopics(ctx); err != nil {
		t.Fatalf("existing topics: %v", err)
	}
	cfg.Consumer.BaselinesTopic = "no-such-topic-" + itest.RandomID()
	s = New(cfg, nil, nil, nil, nil, NewMetrics(nil), logger(t))
	err := s.checkTopics(ctx)
	if err == nil || !strings.Contains(err.Error(), "consumer.baselines_topic") || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing topic: err = %v", err)
	}
}

// TestSinkDropsResentBatches: a collector re-sends batches after lost
// acknowledgements: the same FlowBatch bytes at later offsets. Copies read
// in the same run as their original are dropped by the in-memory window;
// copies of batches an earlier run wrote and committed (the sink restarted
// in between) are found by the replay check through (producer_id,
// sequence). Every flow is in flows and the rollups once, and the copies
// are counted.
func TestSinkDropsResentBatches(t *testing.T) {
	e := newEnv(t)
	group := "sink-itest-" + itest.RandomID()
	cfg := e.config(group)
	const producer = 0x9e3779b97f4a7c15
	orig, flows, bytes := flowBatches(t, 120, 1000, producer, 1)
	flowsOf := func(ms ...kafka.Message) (n int) {
		for _, m := range ms {
			fb := &pb.FlowBatch{}
			if err := proto.Unmarshal(m.Value, fb); err != nil {
				t.Fatal(err)
			}
			n += len(fb.Flows)
		}
		return n
	}

	// Run 1: the first 80 batches, then copies of 10..14 after them.
	writeMessages(t, e.brokers, e.flows, orig[:80]...)
	writeMessages(t, e.brokers, e.flows, orig[10:15]...)
	first := e.start(t, cfg, nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)
	first.stop(t)

	// Run 2 (restarted: empty window): copies of 70..79, written and
	// committed by run 1, then the last 40 batches with copies of 100..104
	// among them.
	writeMessages(t, e.brokers, e.flows, orig[70:80]...)
	writeMessages(t, e.brokers, e.flows, orig[80:105]...)
	writeMessages(t, e.brokers, e.flows, orig[100:105]...)
	writeMessages(t, e.brokers, e.flows, orig[105:]...)
	second := e.start(t, cfg, nil)
	waitCommitted(t, e.brokers, group, e.flows, 4, 40*time.Second)

	e.checkExactlyOnce(t, flows, bytes)
	e.checkRollupsMatchFlows(t)
	if n := e.count(t, "SELECT uniqExact(producer_id, sequence, kafka_index) FROM %s.flows"); n != uint64(flows) {
		t.Errorf("%d distinct (producer_id, sequence, kafka_index), want %d", n, flows)
	}
	if n := e.count(t, fmt.Sprintf("SELECT countIf(producer_id != %d OR sequence = 0) FROM %%s.flows", uint64(producer))); n != 0 {
		t.Errorf("%d rows without the batch identity", n)
	}
	inMemory := testutil.ToFloat64(first.m.DuplicateBatches) + testutil.ToFloat64(second.m.DuplicateBatches)
	dupFlows := testutil.ToFloat64(first.m.DuplicateFlows) + testutil.ToFloat64(second.m.DuplicateFlows)
	wantFlows := flowsOf(orig[10:15]...) + flowsOf(orig[70:80]...) + flowsOf(orig[100:105]...)
	t.Logf("%d flows in %d batches; copies: %v batches dropped in memory, %v flows not written (want %d)",
		flows, len(orig), inMemory, dupFlows, wantFlows)
	if inMemory != 10 {
		t.Errorf("duplicate_batches_total = %v, want 10 (copies of 10..14 and 100..104)", inMemory)
	}
	if dupFlows != float64(wantFlows) {
		t.Errorf("duplicate_flows_total = %v, want %d", dupFlows, wantFlows)
	}
	if n := testutil.ToFloat64(second.m.ReplaySkipped.WithLabelValues("flows")); n != 0 {
		t.Errorf("replay_skipped_rows_total = %v: copies counted as replays", n)
	}
}
