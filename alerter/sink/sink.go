// Package sink is Flowsentry's ClickHouse sink: a Kafka consumer group that
// reads the flows, anomalies and baselines topics and writes
// flowsentry.flows, alerts and baselines with batch inserts bounded by size
// and time.
//
// Delivery: an offset is committed only after ClickHouse acknowledged the
// batch (and dead letters were acknowledged by Kafka), and the next batch is
// inserted only after that commit. So after a crash at most one batch per
// partition was written but not committed. flows cannot fold duplicates, so
// the first rows of every newly assigned partition, and every batch whose
// insert failed, are checked against what ClickHouse holds for exactly those
// (partition, offset, index) records, and held rows (same position, same
// content) are skipped: each flow is written once, and so counted once by
// the rollups fed from it; when rows were held, the rollups of their cells
// are compared with flows and completed, in case their INSERT died between
// the flows part and the views' parts. alerts
// and baselines are ReplacingMergeTrees keyed by event: a replay folds.
package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/store"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/segmentio/kafka-go"
)

// Sink is the consumer group and its pipelines.
type Sink struct {
	cfg       Config
	log       *slog.Logger
	metrics   *Metrics
	dialer    *kafka.Dialer
	transport *kafka.Transport
	store     *store.Store
	dead      DeadLetters
	acked     *offsets
	joined    atomic.Bool
	// chOK: per pipeline (flows, anomalies, baselines), false while its
	// inserts fail.
	chOK [3]atomic.Bool

	// LagInterval is how often consumer lag is measured (default 10s).
	LagInterval time.Duration
	// commitHook, when set, runs before every offset commit; tests return
	// errStopped from it to simulate a crash after the insert.
	commitHook func(topic string, offsets map[int]int64) error
}

// New assembles a sink. dialer and transport carry the Kafka TLS/SASL.
func New(cfg Config, st *store.Store, dead DeadLetters, dialer *kafka.Dialer, transport *kafka.Transport,
	m *Metrics, log *slog.Logger) *Sink {
	s := &Sink{cfg: cfg, log: log, metrics: m, dialer: dialer, transport: transport, store: st, dead: dead,
		acked: newOffsets(), LagInterval: 10 * time.Second}
	for i := range s.chOK {
		s.chOK[i].Store(true)
	}
	return s
}

// Ready is the /readyz check: in the group and ClickHouse accepting inserts.
func (s *Sink) Ready() error {
	if !s.joined.Load() {
		return errors.New("not in the consumer group yet")
	}
	for i := range s.chOK {
		if !s.chOK[i].Load() {
			return errors.New("ClickHouse inserts are failing (retrying)")
		}
	}
	return nil
}

// Run consumes until ctx ends; it returns after the running batches ended.
func (s *Sink) Run(ctx context.Context) error {
	var topics []string
	for _, t := range []string{s.cfg.Consumer.FlowsTopic, s.cfg.Consumer.AnomaliesTopic, s.cfg.Consumer.BaselinesTopic} {
		if t != "" {
			topics = append(topics, t)
		}
	}
	if err := s.checkTopics(ctx); err != nil {
		return err
	}
	start := kafka.FirstOffset
	if s.cfg.Consumer.StartOffset == "latest" {
		start = kafka.LastOffset
	}
	group, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID: s.cfg.Consumer.GroupID, Brokers: s.cfg.Kafka.Brokers, Dialer: s.dialer, Topics: topics,
		StartOffset: start, WatchPartitionChanges: true, JoinGroupBackoff: 2 * time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			s.log.Warn("kafka consumer group", "detail", fmt.Sprintf(msg, args...))
		}),
	})
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	stop := context.AfterFunc(ctx, func() { _ = group.Close() })
	defer stop()
	defer group.Close()
	for {
		gen, err := group.Next(ctx)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, kafka.ErrGroupClosed) {
				return nil
			}
			s.log.Warn("joining consumer group failed, retrying", "err", err)
			if !sleep(ctx, s.cfg.Retry.InitialBackoff) {
				return nil
			}
			continue
		}
		s.generation(gen)
	}
}

// checkTopics fails when a configured topic does not exist (a typo would
// otherwise make the group rebalance forever) or when the Kafka user has no
// ACL on it (kafkaclient.TopicProblems); while the brokers do not answer it
// waits.
func (s *Sink) checkTopics(ctx context.Context) error {
	c := s.cfg.Consumer
	keys := map[string]string{c.FlowsTopic: "consumer.flows_topic", c.AnomaliesTopic: "consumer.anomalies_topic",
		c.BaselinesTopic: "consumer.baselines_topic", c.DeadLetterTopic: "consumer.dead_letter_topic"}
	delete(keys, "")
	dialer := s.dialer
	if dialer == nil {
		dialer = &kafka.Dialer{Timeout: 10 * time.Second}
	}
	backoff := s.cfg.Retry.InitialBackoff
	for i := 0; ; i++ {
		broker := s.cfg.Kafka.Brokers[i%len(s.cfg.Kafka.Brokers)]
		problems, err := kafkaclient.TopicProblems(ctx, dialer, broker, keys)
		if err == nil {
			return errors.Join(problems...)
		}
		s.log.Warn("Kafka not reachable, waiting", "broker", broker, "backoff", backoff, "err", err)
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		backoff = min(2*backoff, s.cfg.Retry.MaxBackoff)
	}
}

// generation starts one reader per assigned partition and one pipeline
// per topic. They all stop when the generation ends (rebalance, shutdown,
// or one of them returning).
func (s *Sink) generation(gen *kafka.Generation) {
	s.joined.Store(true)
	s.acked.clear()
	var assigned []string
	for topic, parts := range gen.Assignments {
		if len(parts) == 0 {
			continue
		}
		commit := func(ctx context.Context, offs map[int]int64) error {
			if s.commitHook != nil {
				if err := s.commitHook(topic, offs); err != nil {
					return err
				}
			}
			return gen.CommitOffsets(map[string]map[int]int64{topic: offs})
		}
		switch topic {
		case s.cfg.Consumer.FlowsTopic:
			startTopic(s, gen, topic, parts, Table[rowsFlow](FlowsTable{Store: s.store}), commit, &s.chOK[0])
		case s.cfg.Consumer.AnomaliesTopic:
			startTopic(s, gen, topic, parts, Table[rowsAlert](AlertsTable{Insertf: s.store.InsertAlerts}), commit, &s.chOK[1])
		case s.cfg.Consumer.BaselinesTopic:
			startTopic(s, gen, topic, parts, Table[rowsBaseline](BaselinesTable{Insertf: s.store.InsertBaselines}), commit, &s.chOK[2])
		default:
			continue
		}
		for _, pa := range parts {
			if pa.Offset >= 0 {
				s.acked.set(topic, pa.ID, pa.Offset)
			}
			assigned = append(assigned, topic+"/"+strconv.Itoa(pa.ID))
		}
	}
	s.log.Info("consumer group generation", "generation", gen.ID, "member", gen.MemberID, "assigned", assigned)
	gen.Start(func(ctx context.Context) { s.reportLag(ctx, gen.Assignments) })
}

// startTopic runs one topic's pipeline and a reader per assigned partition
// in the generation.
func startTopic[R any](s *Sink, gen *kafka.Generation, topic string, parts []kafka.PartitionAssignment,
	t Table[R], commit Committer, healthy *atomic.Bool) {
	p := newPipeline(topic, t, s.cfg, s.dead, commit, s.metrics, s.acked, s.log)
	p.healthy = healthy
	in := make(chan decoded[R], s.cfg.Batch.QueueMessages)
	gen.Start(func(ctx context.Context) {
		if err := p.run(ctx, in); err != nil && !errors.Is(err, errStopped) {
			s.log.Error("pipeline stopped", "topic", topic, "err", err)
		}
	})
	feed := func(ctx context.Context, m Message) bool {
		select {
		case in <- p.decode(m):
			return true
		case <-ctx.Done():
			return false
		}
	}
	for _, pa := range parts {
		gen.Start(func(ctx context.Context) { s.read(ctx, topic, pa, feed) })
	}
}

// read feeds one partition into its topic's pipeline. It blocks when the
// pipeline is busy: the data stays in Kafka, which is the buffer.
func (s *Sink) read(ctx context.Context, topic string, pa kafka.PartitionAssignment, feed func(context.Context, Message) bool) {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: s.cfg.Kafka.Brokers, Dialer: s.dialer, Topic: topic,
		Partition: pa.ID, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: time.Second,
		ErrorLogger: kafka.LoggerFunc(func(msg string, args ...any) {
			s.log.Warn("kafka reader", "topic", topic, "partition", pa.ID, "detail", fmt.Sprintf(msg, args...))
		})})
	defer r.Close()
	if err := r.SetOffset(pa.Offset); err != nil {
		s.log.Error("set offset", "topic", topic, "partition", pa.ID, "offset", pa.Offset, "err", err)
		<-ctx.Done()
		return
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("fetch failed", "topic", topic, "partition", pa.ID, "err", err)
			if !sleep(ctx, s.cfg.Retry.InitialBackoff) {
				return
			}
			continue
		}
		if !feed(ctx, Message{Topic: topic, Partition: m.Partition, Offset: m.Offset, Time: m.Time, Value: m.Value}) {
			return
		}
	}
}

// reportLag sets consumer_lag = end of partition - committed offset, from
// the brokers (not the readers, which stop fetching while ClickHouse is
// down: that is exactly when lag matters). A partition without a commit
// counts from its first offset.
func (s *Sink) reportLag(ctx context.Context, assignments map[string][]kafka.PartitionAssignment) {
	client := &kafka.Client{Addr: kafka.TCP(s.cfg.Kafka.Brokers...), Timeout: 10 * time.Second}
	if s.transport != nil { // a nil *Transport in the interface would be used
		client.Transport = s.transport
	}
	// One request per kind: the broker answers a partition once per request.
	first := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	last := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for topic, parts := range assignments {
		for _, pa := range parts {
			first.Topics[topic] = append(first.Topics[topic], kafka.FirstOffsetOf(pa.ID))
			last.Topics[topic] = append(last.Topics[topic], kafka.LastOffsetOf(pa.ID))
		}
	}
	defer func() {
		for topic, parts := range assignments {
			for _, pa := range parts {
				s.metrics.Lag.DeleteLabelValues(topic, strconv.Itoa(pa.ID))
			}
		}
	}()
	t := time.NewTicker(s.LagInterval)
	defer t.Stop()
	for {
		if err := s.measureLag(ctx, client, first, last); err != nil && ctx.Err() == nil {
			s.log.Debug("lag: list offsets failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sink) measureLag(ctx context.Context, client *kafka.Client, first, last *kafka.ListOffsetsRequest) error {
	lo, err := client.ListOffsets(ctx, first)
	if err != nil {
		return err
	}
	hi, err := client.ListOffsets(ctx, last)
	if err != nil {
		return err
	}
	for topic, pos := range hi.Topics {
		starts := map[int]int64{}
		for _, po := range lo.Topics[topic] {
			if po.Error == nil {
				starts[po.Partition] = po.FirstOffset
			}
		}
		for _, po := range pos {
			if po.Error != nil {
				s.log.Debug("lag: partition error", "topic", topic, "partition", po.Partition, "err", po.Error)
				continue
			}
			acked, ok := s.acked.get(topic, po.Partition)
			if start := starts[po.Partition]; !ok || acked < start {
				acked = start
			}
			s.metrics.Lag.WithLabelValues(topic, strconv.Itoa(po.Partition)).Set(float64(max(po.LastOffset-acked, 0)))
		}
	}
	return nil
}
