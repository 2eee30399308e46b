//go:build integration

package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/detector/worker"
	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/secret"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// insertFlows writes flows as the sink does (seconds, 16-byte addresses),
// one Kafka message per batch, at positions no real partition has (>= 65000).
func insertFlows(t *testing.T, conn driver.Conn, batches [][]*pb.Flow, partition uint16) {
	t.Helper()
	ctx := context.Background()
	b, err := conn.PrepareBatch(ctx, "INSERT INTO flowsentry.flows (time_received, time_flow_start, time_flow_end, "+
		"src_addr, dst_addr, src_port, dst_port, proto, tcp_flags, fragment_offset, sampling_rate, bytes, packets, "+
		"customer, subnet, direction, kafka_partition, kafka_offset, kafka_index)")
	if err != nil {
		t.Fatal(err)
	}
	ts := func(ns uint64) time.Time { return time.Unix(int64(ns/1e9), 0).UTC() }
	for off, flows := range batches {
		for i, f := range flows {
			src, dst := to16(f.SrcAddr), to16(f.DstAddr)
			if err := b.Append(ts(f.TimeReceivedNs), ts(f.TimeFlowStartNs), ts(f.TimeFlowEndNs), string(src[:]), string(dst[:]),
				uint16(f.SrcPort), uint16(f.DstPort), uint8(f.Proto), uint8(f.TcpFlags), uint16(f.FragmentOffset),
				uint32(f.SamplingRate), f.Bytes, f.Packets, f.Customer, f.Subnet, int8(f.Direction),
				partition, uint64(off), uint32(i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := b.Send(); err != nil {
		t.Fatal(err)
	}
}

// analyst connects as the read-only user the bootstrap is meant to use.
func analyst(t *testing.T) driver.Conn {
	itest.ClickHouse(t) // skips (or fails in CI) when the server is down
	if os.Getenv("FLOWSENTRY_CH_ANALYST_PASSWORD") == "" {
		t.Setenv("FLOWSENTRY_CH_ANALYST_PASSWORD", "analyst-dev")
	}
	c := chclient.Default()
	if a := os.Getenv("FLOWSENTRY_CLICKHOUSE"); a != "" {
		c.Addr = []string{a}
	}
	c.Username, c.Password = "flowsentry_analyst", secret.Ref{Env: "FLOWSENTRY_CH_ANALYST_PASSWORD"}
	conn, err := c.Open(context.Background(), "clickhouse")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func lastOffset(t *testing.T, brokers []string, topic string, p int) int64 {
	t.Helper()
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Timeout: 10 * time.Second}
	resp, err := client.ListOffsets(context.Background(), &kafka.ListOffsetsRequest{
		Topics: map[string][]kafka.OffsetRequest{topic: {kafka.LastOffsetOf(p)}}})
	if err != nil {
		t.Fatal(err)
	}
	return resp.Topics[topic][0].LastOffset
}

// Eighty minutes of history (with a UDP flood in it) go into ClickHouse;
// the bootstrap learns them through the analyst user and writes the state;
// a real worker then restores it and opens an incident on the first
// attack window, while a subnet without history stays in warm-up (360
// windows = 1 h at the defaults) and says nothing about the same attack.
func TestIntegrationBootstrapThenDetect(t *testing.T) {
	brokers := itest.KafkaBrokers(t)
	admin := itest.ClickHouse(t)
	ro := analyst(t)
	id := itest.RandomID()
	wcfg := worker.DefaultConfig()
	wcfg.Group, wcfg.StartOffset = "bootstrap-it-"+id, "first"
	wcfg.Topics = worker.Topics{Flows: itest.Topic(t, brokers, "flows", 3), State: itest.Topic(t, brokers, "detector-state", 3),
		Anomalies: itest.Topic(t, brokers, "anomalies", 1), Baselines: itest.Topic(t, brokers, "baselines", 1)}
	wcfg.CheckpointSeconds, wcfg.SessionTimeoutSeconds, wcfg.HeartbeatSeconds, wcfg.FetchMaxWaitMs = 1, 6, 1, 50
	kc := kafkaclient.Default()
	kc.Brokers = brokers
	ec, bc, cc := engine.DefaultConfig(), baseline.DefaultConfig(), classify.DefaultConfig()

	// Subnets unique to this run: 100.127.0.0/16, /26 each.
	r := rand.New(rand.NewPCG(rand.Uint64(), 1))
	x, y := r.IntN(256), 64*r.IntN(4)
	customer := "bootstrap-it-" + id
	boot := synth.New(fmt.Sprintf("100.127.%d.%d/26", x, y), customer, 1)
	fresh := synth.New(fmt.Sprintf("100.127.%d.%d/26", (x+1)%256, y), customer, 2)

	now := time.Now().Truncate(time.Second)
	var hist [][]*pb.Flow
	nflows := 0
	histFrom := now.Add(-80 * time.Minute).UnixNano()
	for tt := histFrom; tt < now.Add(-20*time.Second).UnixNano(); tt += 1e9 {
		fl := boot.Normal(tt, 10000, 1000)
		if tt >= now.Add(-15*time.Minute).UnixNano() && tt < now.Add(-10*time.Minute).UnixNano() {
			fl = append(fl, boot.Attack(synth.AttackUDP, tt, 100000)...)
		}
		hist = append(hist, fl)
		nflows += len(fl)
	}
	insertFlows(t, admin, hist, 65000+uint16(r.IntN(500)))
	src := &ClickHouse{Conn: ro, Database: "flowsentry", Customers: []string{customer}}
	job := Job{Replay: Replay{Engine: ec, Baseline: bc, Classify: cc}, Kafka: kc, Worker: wcfg, Days: 1,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	ctx := context.Background()

	// A dry run learns and writes nothing.
	dry := job
	dry.DryRun = true
	s, err := dry.Run(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	if s.Flows != uint64(nflows) || s.Targets != 1 || s.Warm != 1 || s.Events["udp_flood START"] != 1 || s.Committed != nil {
		t.Fatalf("dry run: %d of %d flows, summary %+v", s.Flows, nflows, s)
	}
	for p := range 3 {
		if n := lastOffset(t, brokers, wcfg.Topics.State, p); n != 0 {
			t.Fatalf("dry run wrote %d records to state partition %d", n, p)
		}
	}

	// Flows already in Kafka at the cut but not in ClickHouse (the sink's
	// lag): an ICMP flood the workers must never read, since the group
	// resumes at the cut.
	prod := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: wcfg.Topics.Flows, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: 2 * time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireOne}
	defer prod.Close()
	const preCut = 5
	for i := range int64(preCut) {
		tt := now.Add(-15*time.Second).UnixNano() + i*1e9
		fl := append(boot.Normal(tt, 10000, 1000), boot.Attack(synth.AttackICMP, tt, 200000)...)
		b, err := proto.Marshal(&pb.FlowBatch{Flows: fl, Collector: "it"})
		if err != nil {
			t.Fatal(err)
		}
		if err := prod.WriteMessages(ctx, kafka.Message{Key: []byte(boot.Subnet.String()), Value: b}); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	s, err = job.Run(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	s.Print(&sb)
	t.Logf("bootstrap in %v:\n%s", time.Since(began).Round(time.Millisecond), sb.String())
	if s.Written != 1 || s.Windows[0] < uint32(bc.WarmupWindows) || len(s.Committed) != 1 {
		t.Fatalf("summary %+v", s)
	}
	for p, off := range s.Committed {
		if off != preCut || lastOffset(t, brokers, wcfg.Topics.State, p) != 1 {
			t.Fatalf("partition %d: committed %d (want the flows end offset %d), state holds %d records", p, off, preCut,
				lastOffset(t, brokers, wcfg.Topics.State, p))
		}
	}
	if _, err := job.Run(ctx, src); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second bootstrap without --force: %v", err)
	}
	forced := job
	forced.Force = true
	if s, err := forced.Run(ctx, src); err != nil || s.Written != 1 {
		t.Fatalf("bootstrap with --force: %v", err)
	}
	for p := range s.Committed {
		if n := lastOffset(t, brokers, wcfg.Topics.State, p); n != 2 {
			t.Fatalf("state partition %d holds %d records after --force, want 2", p, n)
		}
	}
	if n := lastOffset(t, brokers, wcfg.Topics.Anomalies, 0); n != 0 {
		t.Fatalf("the bootstrap published %d anomaly events", n)
	}

	// A real worker on the same topics and group.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w, err := worker.New(wcfg, kc, log, prometheus.NewRegistry(), func(sink engine.Sink) (*engine.Engine, error) {
		return engine.New(ec, bc, cc, sink, nil, "it", engine.NewMetrics(prometheus.NewRegistry()))
	})
	if err != nil {
		t.Fatal(err)
	}
	workerAt := time.Now()
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- w.Run(wctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Error("worker did not stop")
		}
	})
	// 20 s of normal traffic, then 40 s of UDP flood on both subnets.
	attackAt := now.Add(20 * time.Second).UnixNano()
	for tt := now.UnixNano(); tt < now.Add(60*time.Second).UnixNano(); tt += 1e9 {
		var msgs []kafka.Message
		for _, g := range []*synth.Gen{boot, fresh} {
			fl := g.Normal(tt, 10000, 1000)
			if tt >= attackAt {
				fl = append(fl, g.Attack(synth.AttackUDP, tt, 100000)...)
			}
			b, err := proto.Marshal(&pb.FlowBatch{Flows: fl, Collector: "it"})
			if err != nil {
				t.Fatal(err)
			}
			msgs = append(msgs, kafka.Message{Key: []byte(g.Subnet.String()), Value: b})
		}
		if err := prod.WriteMessages(ctx, msgs...); err != nil {
			t.Fatal(err)
		}
	}
	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: wcfg.Topics.Anomalies, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	defer rd.Close()
	rctx, rcancel := context.WithTimeout(ctx, 40*time.Second)
	defer rcancel()
	var start *pb.AnomalyEvent
	var seen []string
	for start == nil {
		m, err := rd.ReadMessage(rctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("no START for the bootstrapped subnet within 40 s; events %v", seen)
			}
			t.Fatal(err)
		}
		ev := &pb.AnomalyEvent{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, ev.Subnet+" "+ev.Class+" "+ev.Kind.String())
		if ev.Subnet == fresh.Subnet.String() {
			t.Fatalf("subnet without history alerted during its warm-up: %v", seen)
		}
		if ev.Class == classify.ICMPFlood {
			t.Fatalf("the worker read flows from before the cut: %v", seen)
		}
		if ev.Subnet == boot.Subnet.String() && ev.Kind == pb.AnomalyEvent_START {
			start = ev
		}
	}
	// started_at is the start of the attack's first window.
	if start.Class != classify.UDPFlood || int64(start.StartedAtNs) <= attackAt-10e9 || int64(start.StartedAtNs) > attackAt+10e9 {
		t.Fatalf("START %s at %+.0fs from the attack", start.Class, float64(int64(start.StartedAtNs)-attackAt)/1e9)
	}
	t.Logf("START %s for the window starting %.0f s from the attack's first flow, %v after the worker started; events %v",
		start.Class, float64(int64(start.StartedAtNs)-attackAt)/1e9, time.Since(workerAt).Round(time.Millisecond), seen)
	// The subnet without history was read (it learns through the attack:
	// nothing can be hot before warm-up) and stays in warm-up.
	var learned uint32
	var warm bool
	for deadline := time.Now().Add(15 * time.Second); learned < 5; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("subnet without history: %d windows learned after 15 s", learned)
		}
		w.Engine(func(e *engine.Engine) {
			learned = e.Learned(fresh.Subnet.String(), pb.Direction_DIRECTION_INBOUND)
			warm = e.Warm(fresh.Subnet.String(), pb.Direction_DIRECTION_INBOUND)
		})
	}
	if warm {
		t.Fatalf("subnet without history is warm after %d windows", learned)
	}
	// While a worker runs, a bootstrap is refused even with --force.
	if _, err := forced.Run(ctx, src); err == nil || !strings.Contains(err.Error(), "active members") {
		t.Fatalf("bootstrap while a worker runs: %v", err)
	}
	// Drain what the worker has published so far: nothing for it either.
	dctx, dcancel := context.WithTimeout(ctx, 3*time.Second)
	defer dcancel()
	for {
		m, err := rd.ReadMessage(dctx)
		if err != nil {
			break
		}
		ev := &pb.AnomalyEvent{}
		if proto.Unmarshal(m.Value, ev) == nil && ev.Subnet == fresh.Subnet.String() {
			t.Fatalf("subnet without history alerted: %s %s", ev.Class, ev.Kind)
		}
	}
}
