//go:build integration

package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/packetworks/flowsentry/detector/baseline"
	"github.com/packetworks/flowsentry/detector/classify"
	"github.com/packetworks/flowsentry/detector/engine"
	"github.com/packetworks/flowsentry/detector/synth"
	"github.com/packetworks/flowsentry/schemas/itest"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

const (
	sec        = int64(1e9)
	t0         = int64(1717977600) * sec // a Monday, 00:00 UTC
	basePps    = 10000.0
	pktPerFlow = 250.0
	warmWins   = 30
)

type env struct {
	brokers []string
	topics  Topics
	group   string
	prod    *kafka.Writer
}

func newEnv(t *testing.T, parts int) *env {
	brokers := itest.KafkaBrokers(t)
	e := &env{brokers: brokers, group: "detector-it-" + itest.RandomID(), topics: Topics{
		Flows:     itest.Topic(t, brokers, "flows", parts),
		State:     itest.Topic(t, brokers, "detector-state", parts),
		Anomalies: itest.Topic(t, brokers, "anomalies", 1),
		Baselines: itest.Topic(t, brokers, "baselines", 1),
	}}
	e.prod = &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: e.topics.Flows, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: 2 * time.Millisecond, BatchSize: 500, RequiredAcks: kafka.RequireOne}
	t.Cleanup(func() { e.prod.Close() })
	return e
}

func (e *env) worker(t *testing.T, name string, mods ...func(*Config, *engine.Config)) (*Worker, context.CancelFunc, chan error) {
	cfg := DefaultConfig()
	cfg.Group, cfg.Topics, cfg.StartOffset = e.group, e.topics, "first"
	cfg.CheckpointSeconds, cfg.SessionTimeoutSeconds, cfg.HeartbeatSeconds, cfg.FetchMaxWaitMs = 1, 6, 1, 50
	kc := kafkaclient.Default()
	kc.Brokers = e.brokers
	ecfg, bcfg, ccfg := engine.DefaultConfig(), baseline.DefaultConfig(), classify.DefaultConfig()
	ecfg.LatenessSeconds = 2
	for _, m := range mods {
		m(&cfg, &ecfg)
	}
	bcfg.WarmupWindows = warmWins
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("worker", name)
	w, err := New(cfg, kc, log, prometheus.NewRegistry(), func(s engine.Sink) (*engine.Engine, error) {
		return engine.New(ecfg, bcfg, ccfg, s, nil, name, engine.NewMetrics(prometheus.NewRegistry()))
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Errorf("worker %s did not stop", name)
		}
	})
	return w, cancel, done
}

// produce sends one second of flows per generator, one batch per subnet.
func (e *env) produce(t *testing.T, flows map[string][]*pb.Flow) {
	var msgs []kafka.Message
	for subnet, fl := range flows {
		if len(fl) == 0 {
			continue
		}
		b, err := proto.Marshal(&pb.FlowBatch{Flows: fl, Collector: "it"})
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, kafka.Message{Key: []byte(subnet), Value: b})
	}
	if err := e.prod.WriteMessages(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readEvents reads anomaly events until stop says enough or the timeout.
func (e *env) readEvents(t *testing.T, timeout time.Duration, stop func([]*pb.AnomalyEvent) bool) []*pb.AnomalyEvent {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.topics.Anomalies, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var out []*pb.AnomalyEvent
	for !stop(out) {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				return out
			}
			t.Fatal(err)
		}
		ev := &pb.AnomalyEvent{}
		if err := proto.Unmarshal(m.Value, ev); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != ev.Id {
			t.Errorf("message key %q, anomaly id %q", m.Key, ev.Id)
		}
		out = append(out, ev)
	}
	return out
}

func has(evs []*pb.AnomalyEvent, kind pb.AnomalyEvent_Kind) *pb.AnomalyEvent {
	for _, ev := range evs {
		if ev.Kind == kind {
			return ev
		}
	}
	return nil
}

// Warm-up, a UDP flood and recovery through the real broker: START, UPDATE
// and END arrive on the anomalies topic with the class and fingerprint.
func TestIntegrationLifecycle(t *testing.T) {
	e := newEnv(t, 2)
	w, _, _ := e.worker(t, "solo")
	g := synth.New("203.0.113.0/24", "acme", 1)
	subnet := g.Subnet.String()
	tt := t0
	for ; tt < t0+warmWins*10*sec+20*sec; tt += sec {
		e.produce(t, map[string][]*pb.Flow{subnet: g.Normal(tt, basePps, pktPerFlow)})
	}
	waitFor(t, "warm baseline", 30*time.Second, func() bool {
		warm := false
		w.Engine(func(en *engine.Engine) { warm = en.Warm(subnet, pb.Direction_DIRECTION_INBOUND) })
		return warm
	})
	attackAt := time.Now()
	for end := tt + 90*sec; tt < end; tt += sec {
		e.produce(t, map[string][]*pb.Flow{subnet: append(g.Normal(tt, basePps, pktPerFlow), g.Attack(synth.AttackUDP, tt, 100000)...)})
	}
	for end := tt + 60*sec; tt < end; tt += sec {
		e.produce(t, map[string][]*pb.Flow{subnet: g.Normal(tt, basePps, pktPerFlow)})
	}
	evs := e.readEvents(t, 30*time.Second, func(evs []*pb.AnomalyEvent) bool { return has(evs, pb.AnomalyEvent_END) != nil })
	t.Logf("produced 150 s of event time and read %d events in %v", len(evs), time.Since(attackAt))
	start, update, end := has(evs, pb.AnomalyEvent_START), has(evs, pb.AnomalyEvent_UPDATE), has(evs, pb.AnomalyEvent_END)
	if start == nil || update == nil || end == nil {
		t.Fatalf("want START, UPDATE and END, got %d events", len(evs))
	}
	for _, ev := range []*pb.AnomalyEvent{start, update, end} {
		if ev.Class != classify.UDPFlood || ev.Subnet != subnet || ev.Customer != "acme" || ev.Id != start.Id || ev.Detector != "solo" {
			t.Errorf("%s: class %s subnet %s customer %s id %s detector %s", ev.Kind, ev.Class, ev.Subnet, ev.Customer, ev.Id, ev.Detector)
		}
	}
	if !(start.Seq == 0 && update.Seq > 0 && end.Seq > update.Seq) {
		t.Errorf("seq START %d UPDATE %d END %d", start.Seq, update.Seq, end.Seq)
	}
	fp := start.Fingerprint
	if fp == nil || len(fp.TopDestinations) == 0 || fp.TopDestinations[0].Key != g.Victim().String() ||
		fp.TopProtocols[0].Key != "udp" || fp.Mitigation == nil || fp.Mitigation.DstPrefix != g.Victim().String()+"/32" {
		t.Fatalf("fingerprint %v", fp)
	}
	if end.EndedAtNs <= end.StartedAtNs || end.TotalPackets == 0 || end.PeakPps < 50000 {
		t.Errorf("END ended %d started %d totals %d peak %d", end.EndedAtNs, end.StartedAtNs, end.TotalPackets, end.PeakPps)
	}
}

// Two workers share the partitions; one is killed (no final checkpoint);
// the survivor takes its partitions, restores their baselines from the
// state topic (no re-learning) and detects an attack on them at once.
func TestIntegrationRebalanceResumesFromCheckpoint(t *testing.T) {
	e := newEnv(t, 4)
	a, _, aDone := e.worker(t, "a")
	b, _, _ := e.worker(t, "b")
	waitFor(t, "both workers assigned", 40*time.Second, func() bool {
		return len(a.Partitions()) > 0 && len(b.Partitions()) > 0 && len(a.Partitions())+len(b.Partitions()) == 4
	})
	gens := map[string]*synth.Gen{}
	for i := 0; i < 8; i++ {
		s := fmt.Sprintf("198.51.%d.0/24", 100+i)
		gens[s] = synth.New(s, fmt.Sprintf("cust%d", i), uint64(i))
	}
	tt := t0
	second := func(attack string) {
		m := map[string][]*pb.Flow{}
		for s, g := range gens {
			m[s] = g.Normal(tt, basePps, pktPerFlow)
			if s == attack {
				m[s] = append(m[s], g.Attack(synth.AttackUDP, tt, 100000)...)
			}
		}
		e.produce(t, m)
		tt += sec
	}
	for tt < t0+warmWins*10*sec+20*sec {
		second("")
	}
	// Find a subnet that worker a owns, once everything is warm.
	var victim string
	waitFor(t, "all subnets warm", 40*time.Second, func() bool {
		warm := 0
		for s := range gens {
			a.Engine(func(en *engine.Engine) {
				if en.Warm(s, pb.Direction_DIRECTION_INBOUND) {
					warm++
					victim = s
				}
			})
			b.Engine(func(en *engine.Engine) {
				if en.Warm(s, pb.Direction_DIRECTION_INBOUND) {
					warm++
				}
			})
		}
		return warm == len(gens) && victim != ""
	})
	var learned uint32
	a.Engine(func(en *engine.Engine) { learned = en.Learned(victim, pb.Direction_DIRECTION_INBOUND) })
	warmAt := time.Now()
	waitFor(t, "a checkpoint after warm-up", 10*time.Second, func() bool { return a.LastCheckpoint().After(warmAt) })
	a.Kill()
	select {
	case err := <-aDone:
		if err != nil {
			t.Fatalf("killed worker: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("killed worker did not stop")
	}
	waitFor(t, "b owns every partition", 40*time.Second, func() bool { return len(b.Partitions()) == 4 })
	var restored uint32
	b.Engine(func(en *engine.Engine) { restored = en.Learned(victim, pb.Direction_DIRECTION_INBOUND) })
	t.Logf("%s: a had learned %d windows; b restored %d after the kill", victim, learned, restored)
	if restored < warmWins || restored+2 < learned {
		t.Fatalf("b restored %s with %d windows learned; a had %d", victim, restored, learned)
	}
	for end := tt + 30*sec; tt < end; {
		second(victim)
	}
	evs := e.readEvents(t, 30*time.Second, func(evs []*pb.AnomalyEvent) bool {
		return slices.ContainsFunc(evs, func(ev *pb.AnomalyEvent) bool { return ev.Kind == pb.AnomalyEvent_START && ev.Subnet == victim })
	})
	st := has(evs, pb.AnomalyEvent_START)
	if st == nil || st.Subnet != victim || st.Class != classify.UDPFlood || st.Detector != "b" {
		t.Fatalf("after failover: %d events, first START %v", len(evs), st)
	}
	for _, ev := range evs {
		if ev.Subnet != victim {
			t.Errorf("unexpected event for %s: %s %s", ev.Subnet, ev.Kind, ev.Class)
		}
	}
}

// committedBehind returns, per flows partition in parts, how many messages
// lie between the group's committed offset and the end of the partition:
// what the next owner replays.
func (e *env) committedBehind(t *testing.T, parts []int) map[int]int64 {
	client := &kafka.Client{Addr: kafka.TCP(e.brokers...), Timeout: 10 * time.Second}
	ctx := context.Background()
	of, err := client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: e.group, Topics: map[string][]int{e.topics.Flows: parts}})
	if err != nil {
		t.Fatal(err)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range parts {
		reqs = append(reqs, kafka.LastOffsetOf(p))
	}
	lo, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{e.topics.Flows: reqs}})
	if err != nil {
		t.Fatal(err)
	}
	end := map[int]int64{}
	for _, po := range lo.Topics[e.topics.Flows] {
		end[po.Partition] = po.LastOffset
	}
	out := map[int]int64{}
	for _, po := range of.Topics[e.topics.Flows] {
		out[po.Partition] = end[po.Partition] - max(po.CommittedOffset, 0)
	}
	return out
}

// A worker killed between checkpoints leaves flows after its last commit;
// the survivor, whose own partitions are a minute of event time further,
// replays them from the commit. With a watermark per partition none of the
// replayed flows is late and the restored baselines learn from them.
func TestIntegrationHandoverReplayNotLate(t *testing.T) {
	e := newEnv(t, 4)
	// a checkpoints rarely, so the kill lands between two checkpoints.
	a, _, aDone := e.worker(t, "a", func(c *Config, _ *engine.Config) { c.CheckpointSeconds = 6 })
	b, _, _ := e.worker(t, "b")
	waitFor(t, "both workers assigned", 40*time.Second, func() bool {
		return len(a.Partitions()) > 0 && len(b.Partitions()) > 0 && len(a.Partitions())+len(b.Partitions()) == 4
	})
	gens := map[string]*synth.Gen{}
	for i := 0; i < 8; i++ {
		s := fmt.Sprintf("198.51.%d.0/24", 100+i)
		gens[s] = synth.New(s, fmt.Sprintf("cust%d", i), uint64(i))
	}
	tt := t0
	second := func() {
		m := map[string][]*pb.Flow{}
		for s, g := range gens {
			m[s] = g.Normal(tt, basePps, pktPerFlow)
		}
		e.produce(t, m)
		tt += sec
	}
	for tt < t0+warmWins*10*sec+20*sec {
		second()
	}
	aParts := a.Partitions()
	var victim string
	waitFor(t, "a warm subnet", 40*time.Second, func() bool {
		for s := range gens {
			a.Engine(func(en *engine.Engine) {
				if en.Warm(s, pb.Direction_DIRECTION_INBOUND) {
					victim = s
				}
			})
		}
		return victim != ""
	})
	warmAt := time.Now()
	waitFor(t, "a checkpoint after warm-up", 15*time.Second, func() bool { return a.LastCheckpoint().After(warmAt) })
	// A minute more, read by both workers, then a dies before its next
	// checkpoint.
	for end := tt + 60*sec; tt < end; {
		second()
	}
	last := tt - sec
	caughtUp := func(w *Worker, parts []int) func() bool {
		return func() bool {
			ok := true
			w.Engine(func(en *engine.Engine) {
				for _, p := range parts {
					if m, _ := en.Watermark(int32(p)); m < last {
						ok = false
					}
				}
			})
			return ok
		}
	}
	waitFor(t, "a read the minute", 20*time.Second, caughtUp(a, aParts))
	if time.Since(a.LastCheckpoint()) > 5*time.Second {
		t.Fatalf("a's next checkpoint is due; the kill would not land between checkpoints")
	}
	a.Kill()
	select {
	case <-aDone:
	case <-time.After(20 * time.Second):
		t.Fatal("killed worker did not stop")
	}
	behind := e.committedBehind(t, aParts)
	var replay int64
	for _, n := range behind {
		replay += n
	}
	if replay == 0 {
		t.Fatalf("a committed everything before the kill (%v): nothing to replay", behind)
	}
	var learnedBefore uint32
	a.Engine(func(en *engine.Engine) { learnedBefore = en.Learned(victim, pb.Direction_DIRECTION_INBOUND) })
	waitFor(t, "b owns every partition", 40*time.Second, func() bool { return len(b.Partitions()) == 4 })
	waitFor(t, "b replayed a's partitions", 30*time.Second, caughtUp(b, aParts))
	var late uint64
	var learned uint32
	b.Engine(func(en *engine.Engine) {
		late = en.Dropped("late")
		learned = en.Learned(victim, pb.Direction_DIRECTION_INBOUND)
	})
	t.Logf("b replayed %d messages of a's partitions %v; late drops %d; %s learned %d windows (a had %d)",
		replay, aParts, late, victim, learned, learnedBefore)
	if late != 0 {
		t.Errorf("b dropped %d replayed flows as late", late)
	}
	// The replay re-learns what a learned after its last checkpoint (the
	// first window after a restore is not learned).
	if learned+2 < learnedBefore {
		t.Errorf("%s: b learned %d windows after the replay, a had %d", victim, learned, learnedBefore)
	}
}

// Baseline snapshots reach the baselines topic, keyed by subnet, with the
// learned expectation, spread, last observed value and p95 of each metric.
func TestIntegrationSnapshotsPublished(t *testing.T) {
	e := newEnv(t, 2)
	e.worker(t, "snap", func(_ *Config, ec *engine.Config) { ec.SnapshotSeconds = 60 })
	g := synth.New("203.0.113.0/24", "acme", 61)
	subnet := g.Subnet.String()
	for tt := t0; tt < t0+200*sec; tt += sec {
		e.produce(t, map[string][]*pb.Flow{subnet: g.Normal(tt, basePps, pktPerFlow)})
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.brokers, Topic: e.topics.Baselines, Partition: 0,
		MinBytes: 1, MaxBytes: 1 << 20, MaxWait: 100 * time.Millisecond})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var snaps []*pb.BaselineSnapshot
	// Event time runs t0..t0+200 s: snapshots close at +60, +120, +180 s.
	for len(snaps) < 3 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("after %d snapshots: %v", len(snaps), err)
		}
		s := &pb.BaselineSnapshot{}
		if err := proto.Unmarshal(m.Value, s); err != nil {
			t.Fatal(err)
		}
		if string(m.Key) != s.Subnet {
			t.Errorf("message key %q, subnet %q", m.Key, s.Subnet)
		}
		snaps = append(snaps, s)
	}
	for i, s := range snaps {
		if s.Subnet != subnet || s.Customer != "acme" || s.Direction != pb.Direction_DIRECTION_INBOUND || s.Detector != "snap" {
			t.Fatalf("snapshot %d: %s %s %s %s", i, s.Subnet, s.Customer, s.Direction, s.Detector)
		}
		if want := uint64(t0 + int64(i+1)*60*sec); s.TimeNs != want {
			t.Errorf("snapshot %d at %d, want %d", i, s.TimeNs, want)
		}
	}
	last := snaps[2]
	byName := map[string]*pb.BaselineMetric{}
	for _, m := range last.Metrics {
		byName[m.Metric] = m
	}
	if len(last.Metrics) != 12 || byName["pps"] == nil || byName["bps"] == nil {
		t.Fatalf("metrics %v", last.Metrics)
	}
	pps := byName["pps"]
	t.Logf("pps at +180 s: expected %.0f spread %.0f observed %.0f p95 %.0f samples %d", pps.Expected, pps.Spread, pps.Observed, pps.P95, pps.Samples)
	near := func(v, want float64) bool { return v > 0.8*want && v < 1.25*want }
	if !near(pps.Expected, basePps) || !near(pps.Observed, basePps) || pps.Spread <= 0 || pps.Spread > 0.5*basePps {
		t.Errorf("pps expected %.0f spread %.0f observed %.0f, want about %.0f", pps.Expected, pps.Spread, pps.Observed, basePps)
	}
	if pps.P95 < pps.Observed*0.9 || !near(pps.P95, basePps) {
		t.Errorf("pps p95 %.0f, observed %.0f", pps.P95, pps.Observed)
	}
	// 17 windows closed by +180 s (the first at t0): all learned.
	if pps.Samples < 15 || pps.Samples > 18 {
		t.Errorf("samples %d, want about 17", pps.Samples)
	}
	if byName["flows"].Expected < 0.8*basePps/pktPerFlow {
		t.Errorf("flows expected %.1f, want about %.0f", byName["flows"].Expected, basePps/pktPerFlow)
	}
}
