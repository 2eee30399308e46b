//go:build integration || faults

package sink

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

type env struct {
	brokers                         []string
	flows, anomalies, baselines, dl string
	conn                            driver.Conn
	db                              string
}

func newEnv(t *testing.T) env {
	brokers := itest.KafkaBrokers(t)
	conn, db := sinktest.Database(t)
	return env{brokers: brokers, conn: conn, db: db,
		flows:     itest.Topic(t, brokers, "sink-flows", 4),
		anomalies: itest.Topic(t, brokers, "sink-anomalies", 2),
		baselines: itest.Topic(t, brokers, "sink-baselines", 2),
		dl:        itest.Topic(t, brokers, "sink-dl", 1)}
}

func (e env) config(group string) Config {
	cfg := DefaultConfig()
	cfg.Kafka.Brokers = e.brokers
	cfg.Consumer.GroupID = group
	cfg.Consumer.FlowsTopic, cfg.Consumer.AnomaliesTopic, cfg.Consumer.BaselinesTopic = e.flows, e.anomalies, e.baselines
	cfg.Consumer.DeadLetterTopic = e.dl
	cfg.Batch.MaxRows = 150
	cfg.Batch.MaxWait = 100 * time.Millisecond
	cfg.Retry.InitialBackoff = 50 * time.Millisecond
	cfg.Retry.MaxBackoff = 500 * time.Millisecond
	return cfg
}

func logger(_ testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// running is a sink started in the background.
type running struct {
	s      *Sink
	m      *Metrics
	cancel context.CancelFunc
	done   chan error
}

func (e env) start(t *testing.T, cfg Config, hook func(string, map[int]int64) error) *running {
	t.Helper()
	m := NewMetrics(nil)
	dead := NewKafkaDeadLetters(e.brokers, cfg.Consumer.DeadLetterTopic, nil)
	t.Cleanup(func() { _ = dead.Close() })
	s := New(cfg, store.New(e.conn, e.db), dead, nil, nil, m, logger(t))
	s.LagInterval = 200 * time.Millisecond
	s.commitHook = hook
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{s: s, m: m, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t *testing.T) {
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("sink: %v", err)
		}
		r.done <- nil // later stops return at once
	case <-time.After(30 * time.Second):
		t.Error("sink did not stop within 30s")
	}
}

// produceFlows writes n FlowBatches keyed by subnet (Murmur2, like the
// collector), 1-4 flows each, received around midnight so batches span two
// day partitions. It returns the flow count and their total bytes.
func produceFlows(t *testing.T, brokers []string, topic string, n int) (flows int, bytes uint64) {
	t.Helper()
	return produceFlowsFrom(t, brokers, topic, n, 1000)
}

// produceFlowsFrom is produceFlows with flow j of message i carrying
// base + i*10 + j bytes.
func produceFlowsFrom(t *testing.T, brokers []string, topic string, n int, base uint64) (flows int, bytes uint64) {
	t.Helper()
	msgs, flows, bytes := flowBatches(t, n, base, 0, 0)
	writeMessages(t, brokers, topic, msgs...)
	return flows, bytes
}

// flowBatches builds the messages of produceFlowsFrom; with producer != 0
// message i carries the identity (producer, seq + i), as the collector's.
func flowBatches(t *testing.T, n int, base, producer, seq uint64) (msgs []kafka.Message, flows int, bytes uint64) {
	t.Helper()
	midnight := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i++ {
		subnet := fmt.Sprintf("203.0.%d.0/24", i%16)
		fb := &pb.FlowBatch{Collector: "itest"}
		if producer != 0 {
			fb.ProducerId, fb.Sequence = producer, seq+uint64(i)
		}
		for j := 0; j <= i%4; j++ {
			b := base + uint64(i*10+j)
			fb.Flows = append(fb.Flows, &pb.Flow{Type: pb.Flow_IPFIX,
				TimeReceivedNs: uint64(midnight.Add(time.Duration(i-n/2) * time.Second).UnixNano()),
				Bytes:          b, Packets: 1, Proto: 17, SrcAddr: []byte{198, 51, 100, byte(j)}, DstAddr: []byte{203, 0, byte(i % 16), 1},
				Customer: "acme", Subnet: subnet, Direction: pb.Direction_DIRECTION_INBOUND})
			flows++
			bytes += b
		}
		v, err := proto.Marshal(fb)
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(subnet), Value: v})
	}
	return msgs, flows, bytes
}

// writeMessages writes msgs keyed by subnet (Murmur2, like the collector),
// in order: a message written twice lands twice on one partition.
func writeMessages(t *testing.T, brokers []string, topic string, msgs ...kafka.Message) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
		RequiredAcks: kafka.RequireAll, BatchSize: 200, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	if err := w.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

// waitCommitted waits until the group committed every partition's end.
func waitCommitted(t testing.TB, brokers []string, group, topic string, parts int, within time.Duration) {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	var req []kafka.OffsetRequest
	var ids []int
	for p := 0; p < parts; p++ {
		req = append(req, kafka.LastOffsetOf(p))
		ids = append(ids, p)
	}
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		ends, err1 := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: req}})
		got, err2 := client.OffsetFetch(context.Background(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ids}})
		if err1 == nil && err2 == nil {
			committed := map[int]int64{}
			for _, p := range got.Topics[topic] {
				committed[p.Partition] = p.CommittedOffset
			}
			all := len(ends.Topics[topic]) == parts
			last = ""
			for _, po := range ends.Topics[topic] {
				last += fmt.Sprintf(" p%d %d/%d", po.Partition, committed[po.Partition], po.LastOffset)
				// An empty partition has nothing to commit (-1).
				if po.Error != nil || (committed[po.Partition] != po.LastOffset && !(po.LastOffset == 0 && committed[po.Partition] < 0)) {
					all = false
				}
			}
			if all {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("group %s did not commit the end of %s within %v:%s", group, topic, within, last)
}

func (e env) count(t *testing.T, q string) uint64 {
	return sinktest.Count(t, e.conn, fmt.Sprintf(q, e.db))
}

// checkExactlyOnce: every flow once in flows, and the rollups count the
// same bytes and flows.
func (e env) checkExactlyOnce(t *testing.T, flows int, bytes uint64) {
	t.Helper()
	if n := e.count(t, "SELECT count() FROM %s.flows"); n != uint64(flows) {
		t.Errorf("flows holds %d rows, want %d", n, flows)
	}
	if n := e.count(t, "SELECT uniqExact(kafka_partition, kafka_offset, kafka_index) FROM %s.flows"); n != uint64(flows) {
		t.Errorf("%d distinct records, want %d", n, flows)
	}
	for _, table := range []string{"flows", "flows_1m", "flows_1h"} {
		if b := e.count(t, "SELECT sum(bytes) FROM %s."+table); b != bytes {
			t.Errorf("%s: %d bytes, want %d", table, b, bytes)
		}
	}
	if n := e.count(t, "SELECT sum(flows) FROM %s.flows_1m"); n != uint64(flows) {
		t.Errorf("flows_1m counts %d flows, want %d", n, flows)
	}
	if n := e.count(t, "SELECT uniqExact(partition_id) FROM system.parts WHERE database = '%s' AND table = 'flows' AND active"); n != 2 {
		t.Errorf("flows spans %d day partitions, want 2", n)
	}
}

// checkRollupsMatchFlows compares every rollup cell with what flows holds,
// per second (minute) too, so the busiest second is right as well.
func (e env) checkRollupsMatchFlows(t *testing.T) {
	t.Helper()
	for _, tc := range []struct{ table, cell, floor, unit, key, nested string }{
		{"flows_1m", "minute", "toStartOfMinute", "toSecond", "second", "secondsMap"},
		{"flows_1h", "hour", "toStartOfHour", "toMinute", "minute", "minutesMap"},
	} {
		raw := fmt.Sprintf(`SELECT count() FROM (SELECT c, customer, subnet, direction, proto, sum(b) AS bytes, sum(f) AS flows,
  arraySort(groupArray((u, b, p))) AS units
FROM (SELECT %[1]s(time_received) AS c, customer, subnet, direction, proto, %[2]s(time_received) AS u,
  sum(bytes) AS b, sum(packets) AS p, count() AS f FROM %[3]s.flows GROUP BY c, customer, subnet, direction, proto, u)
GROUP BY c, customer, subnet, direction, proto)`, tc.floor, tc.unit, e.db)
		n := sinktest.Count(t, e.conn, raw)
		// Cells whose sums and per-unit arrays are identical on both sides.
		same := sinktest.Count(t, e.conn, fmt.Sprintf(`SELECT count() FROM (
  SELECT c, customer, subnet, direction, proto, bytes, flows, units FROM (
    SELECT c, customer, subnet, direction, proto, sum(b) AS bytes, sum(f) AS flows,
      arraySort(groupArray((u, b, p))) AS units
    FROM (SELECT %[1]s(time_received) AS c, customer, subnet, direction, proto, %[2]s(time_received) AS u,
      sum(bytes) AS b, sum(packets) AS p, count() AS f FROM %[3]s.flows GROUP BY c, customer, subnet, direction, proto, u)
    GROUP BY c, customer, subnet, direction, proto)
  ANY INNER JOIN (
    SELECT %[4]s AS c, customer, subnet, direction, proto, sum(bytes) AS r_bytes, sum(flows) AS r_flows,
      arrayMap((k, b, p) -> (k, b, p), tupleElement(sumMap(%[5]s.%[6]s, %[5]s.bytes), 1),
        tupleElement(sumMap(%[5]s.%[6]s, %[5]s.bytes), 2), tupleElement(sumMap(%[5]s.%[6]s, %[5]s.packets), 2)) AS r_units
    FROM %[3]s.%[7]s GROUP BY c, customer, subnet, direction, proto)
  USING (c, customer, subnet, direction, proto)
  WHERE bytes = r_bytes AND flows = r_flows AND units = r_units)`, tc.floor, tc.unit, e.db, tc.cell, tc.nested, tc.key, tc.table))
		rollupCells := sinktest.Count(t, e.conn, fmt.Sprintf("SELECT count() FROM (SELECT DISTINCT %s, customer, subnet, direction, proto FROM %s.%s)",
			tc.cell, e.db, tc.table))
		if n == 0 || same != n || rollupCells != n {
			t.Errorf("%s: %d cells in flows, %d in the rollup, %d identical (sums and per-%s arrays)", tc.table, n, rollupCells, same, tc.key)
		}
	}
}

// readRows decodes the first n messages of one partition of topic into rows.
func readRows(t *testing.T, brokers []string, topic string, partition, n int) []rows.Flow {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: partition, MaxBytes: 1 << 20})
	defer r.Close()
	var out []rows.Flow
	for i := 0; i < n; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := r.ReadMessage(ctx)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		rs, _ := FlowsTable{}.Decode(Message{Topic: topic, Partition: m.Partition, Offset: m.Offset, Value: m.Value})
		out = append(out, rs...)
	}
	return out
}
