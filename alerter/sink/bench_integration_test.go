//go:build integration

package sink

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/rows"
	"github.com/packetworks/flowsentry/alerter/sink/sinktest"
	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// benchFlows makes n realistic flows: 50 customers, 800 subnets, TCP/UDP/
// ICMP, received within one second (what one batch of a busy sink holds).
func benchFlows(n int, t0 time.Time) []*pb.Flow {
	out := make([]*pb.Flow, n)
	for i := range out {
		sub := i % 800
		out[i] = &pb.Flow{Type: pb.Flow_IPFIX, TimeReceivedNs: uint64(t0.Add(time.Duration(i%1000) * time.Millisecond).UnixNano()),
			TimeFlowStartNs: uint64(t0.Add(-time.Minute).UnixNano()), TimeFlowEndNs: uint64(t0.UnixNano()),
			SamplingRate: 1000, SamplingApplied: true, SamplerAddress: []byte{192, 0, 2, byte(i % 4)}, SequenceNum: uint32(i),
			Bytes: uint64(64 + i%1400*1000), Packets: uint64(1 + i%20*1000),
			SrcAddr: []byte{100, 64, byte(i >> 8), byte(i)}, DstAddr: []byte{203, byte(sub >> 8), byte(sub), byte(i % 250)},
			Etype: 0x800, Proto: []uint32{6, 17, 6, 1}[i%4], SrcPort: uint32(1024 + i%60000), DstPort: []uint32{443, 53, 80, 0}[i%4],
			InIf: uint32(i % 8), OutIf: uint32(i % 16), SrcAs: 64500, DstAs: uint32(65000 + sub%50), TcpFlags: 0x18,
			Customer: "cust-" + strconv.Itoa(sub%50), Subnet: fmt.Sprintf("203.%d.%d.0/24", sub>>8, sub),
			Direction: pb.Direction_DIRECTION_INBOUND}
	}
	return out
}

// cpu returns this process's and the ClickHouse server's CPU time.
func cpu() (self, server time.Duration) {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	pid := os.Getenv("FLOWSENTRY_CH_PID")
	if pid == "" {
		_, file, _, _ := runtime.Caller(0)
		b, _ := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", ".run", "clickhouse", "clickhouse.pid"))
		pid = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/" + pid + "/stat"); err == nil {
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 13 {
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			server = time.Duration(ut+st) * 10 * time.Millisecond // USER_HZ = 100
		}
	}
	return self, server
}

func report(b *testing.B, rowsDone int, elapsed, selfCPU, serverCPU time.Duration) {
	b.ReportMetric(float64(rowsDone)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(selfCPU.Seconds()/elapsed.Seconds(), "sink-cores")
	b.ReportMetric(serverCPU.Seconds()/elapsed.Seconds(), "clickhouse-cores")
	// Rows per CPU-second of sink + server: what 1 dedicated core would do,
	// less sensitive to other load on a shared machine than rows/s.
	if cpu := selfCPU + serverCPU; cpu > 0 {
		b.ReportMetric(float64(rowsDone)/cpu.Seconds(), "rows/cpu-s")
	}
	b.ReportMetric(0, "ns/op")
}

// BenchmarkInsertFlows: rows/s of the store alone (conversion done), per
// batch size, with and without the rollup views.
func BenchmarkInsertFlows(b *testing.B) {
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	for _, views := range []bool{true, false} {
		for _, size := range []int{20000, 100000, 500000} {
			b.Run(fmt.Sprintf("rollups=%v/batch=%d", views, size), func(b *testing.B) {
				conn, db := sinktest.Database(b)
				if !views {
					for _, v := range []string{"flows_1m_mv", "flows_1h_mv"} {
						if err := conn.Exec(context.Background(), "DROP TABLE "+db+"."+v); err != nil {
							b.Fatal(err)
						}
					}
				}
				st := store.New(conn, db)
				fl := benchFlows(size, t0)
				rs := make([]rows.Flow, size)
				for i, f := range fl {
					rs[i], _ = rows.FromFlow(f, i%8, int64(i), 0)
				}
				b.ResetTimer()
				s0, c0 := cpu()
				start := time.Now()
				for i := 0; i < b.N; i++ {
					if err := st.InsertFlows(context.Background(), rs); err != nil {
						b.Fatal(err)
					}
				}
				el := time.Since(start)
				s1, c1 := cpu()
				report(b, b.N*size, el, s1-s0, c1-c0)
			})
		}
	}
}

// BenchmarkPipeline: the sink without Kafka: 8 partition feeders decode
// FlowBatches of 20 flows (as the readers do) into the batcher, which
// inserts into ClickHouse (rollups on) and commits (no-op). What the sink
// itself sustains, whatever the broker does.
func BenchmarkPipeline(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("FLOWSENTRY_BENCH_FLOWS")); err == nil && v > 0 {
		total = v
	}
	const perMsg, parts = 20, 8
	fl := benchFlows(total, time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC))
	var msgs [parts][]Message
	for j := 0; j < total; j += perMsg {
		v, _ := proto.Marshal(&pb.FlowBatch{Flows: fl[j:min(j+perMsg, total)]})
		p := (j / perMsg) % parts
		msgs[p] = append(msgs[p], Message{Topic: "flows", Partition: p, Offset: int64(len(msgs[p])), Value: v})
	}
	for _, size := range []int{100000, 250000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			conn, db := sinktest.Database(b)
			for i := 0; i < b.N; i++ {
				cfg := DefaultConfig()
				cfg.Batch.MaxRows = size
				cfg.Batch.MaxWait = time.Second
				if v, err := strconv.Atoi(os.Getenv("FLOWSENTRY_BENCH_CHECK_ROWS")); err == nil {
					cfg.Consumer.ReplayCheckRows = v
				}
				done := make(chan struct{})
				var committed [parts]atomic.Int64
				commit := func(_ context.Context, offs map[int]int64) error {
					for p, o := range offs {
						committed[p].Store(o)
					}
					return nil
				}
				// Offsets restart each iteration: a new assignment, checked
				// against what ClickHouse holds like after a restart.
				_ = conn.Exec(context.Background(), "TRUNCATE TABLE "+db+".flows")
				m := NewMetrics(nil)
				pl := newPipeline[rows.Flow]("flows", FlowsTable{Store: store.New(conn, db)}, cfg, nil, commit, m, newOffsets(), logger(b))
				in := make(chan decoded[rows.Flow], cfg.Batch.QueueMessages)
				ctx, cancel := context.WithCancel(context.Background())
				go func() { _ = pl.run(ctx, in); close(done) }()
				s0, c0 := cpu()
				start := time.Now()
				for p := 0; p < parts; p++ {
					go func() {
						for _, m := range msgs[p] {
							in <- pl.decode(m)
						}
					}()
				}
				for p := 0; p < parts; p++ {
					for committed[p].Load() != int64(len(msgs[p])) {
						time.Sleep(time.Millisecond)
					}
				}
				el := time.Since(start)
				s1, c1 := cpu()
				cancel()
				<-done
				report(b, total, el, s1-s0, c1-c0)
				b.ReportMetric(histSum(b, m.InsertSeconds)/el.Seconds(), "insert-share")
				b.ReportMetric(histSum(b, m.FlushSeconds)/el.Seconds(), "flush-share")
			}
		})
	}
}

func histSum(b *testing.B, h *prometheus.HistogramVec) float64 {
	var sum float64
	ch := make(chan prometheus.Metric, 16)
	go func() { h.Collect(ch); close(ch) }()
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err == nil && d.Histogram != nil {
			sum += d.Histogram.GetSampleSum()
		}
	}
	return sum
}

// BenchmarkSinkEndToEnd: FlowBatches of 20 flows already in an 8-partition
// topic; the sink reads, converts, inserts (with rollups) and commits.
// One iteration is FLOWSENTRY_BENCH_FLOWS flows (default 1M).
func BenchmarkSinkEndToEnd(b *testing.B) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("FLOWSENTRY_BENCH_FLOWS")); err == nil && v > 0 {
		total = v
	}
	const perMsg = 20
	for _, size := range []int{100000, 250000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			brokers := itest.KafkaBrokers(b)
			conn, db := sinktest.Database(b)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				topic := itest.Topic(b, brokers, "sink-bench", 8)
				w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, Balancer: &kafka.Murmur2Balancer{},
					BatchSize: 500, BatchBytes: 16 << 20, BatchTimeout: 10 * time.Millisecond, Compression: kafka.Lz4}
				// Each iteration is a new topic whose offsets restart at 0: its
				// flows get another hour, or the replay check would rightly
				// take them for the previous iteration's (docs/clickhouse.md).
				fl := benchFlows(total, time.Date(2026, 11, 27, 10+i, 0, 0, 0, time.UTC))
				var msgs []kafka.Message
				for j := 0; j < total; j += perMsg {
					// One message per subnet slice: its flows share the key.
					fb := &pb.FlowBatch{Flows: fl[j:min(j+perMsg, total)]}
					v, _ := proto.Marshal(fb)
					msgs = append(msgs, kafka.Message{Key: []byte(fb.Flows[0].Subnet), Value: v})
				}
				if err := w.WriteMessages(context.Background(), msgs...); err != nil {
					b.Fatal(err)
				}
				w.Close()
				cfg := DefaultConfig()
				cfg.Kafka.Brokers = brokers
				cfg.Consumer.GroupID = "sink-bench-" + itest.RandomID()
				cfg.Consumer.FlowsTopic, cfg.Consumer.AnomaliesTopic, cfg.Consumer.BaselinesTopic = topic, "", ""
				cfg.Consumer.DeadLetterTopic = itest.Topic(b, brokers, "sink-bench-dl", 1)
				cfg.Batch.MaxRows = size
				cfg.Batch.MaxWait = time.Second
				m := NewMetrics(nil)
				s := New(cfg, store.New(conn, db), NewKafkaDeadLetters(brokers, cfg.Consumer.DeadLetterTopic, nil), nil, nil, m, logger(nil))
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan error, 1)
				go func() {
					if err := s.Run(ctx); err != nil {
						b.Error(err)
					}
					done <- nil
				}()
				// The clock starts once the group is joined (Kafka delays a
				// new group's first rebalance by 3 s).
				for s.Ready() != nil {
					time.Sleep(5 * time.Millisecond)
				}
				b.StartTimer()
				s0, c0 := cpu()
				start := time.Now()
				waitCommitted(b, brokers, cfg.Consumer.GroupID, topic, 8, 5*time.Minute)
				el := time.Since(start)
				s1, c1 := cpu()
				b.StopTimer()
				cancel()
				<-done
				report(b, total, el, s1-s0, c1-c0)
				if n := sinktest.Count(b, conn, "SELECT count() FROM "+db+".flows"); n != uint64(total*(i+1)) {
					b.Fatalf("flows holds %d rows, want %d", n, total*(i+1))
				}
				b.StartTimer()
			}
		})
	}
}
