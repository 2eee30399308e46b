// Package consume reads anomaly events from Kafka with the alerter's own
// consumer group and commits an offset only when the event's notifications
// are settled and the state holding their outcomes is saved: at-least-once
// delivery whose repeats the state file turns into no-ops.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/alerter/dispatch"
	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// Config is the YAML "consumer" section.
type Config struct {
	Topic   string `yaml:"topic"`
	GroupID string `yaml:"group_id"`
	// CommitInterval: how often settled offsets are committed (the state
	// file is saved first).
	CommitInterval time.Duration `yaml:"commit_interval"`
	// StartOffset for a group without committed offsets: first or last.
	StartOffset string `yaml:"start_offset"`
	// SessionTimeout: how long the broker waits for a dead alerter before
	// handing its partitions to a new one (restart after a crash).
	SessionTimeout time.Duration `yaml:"session_timeout"`
}

// DefaultConfig reads "anomalies" as group flowsentry-alerter.
func DefaultConfig() Config {
	return Config{Topic: topics.Anomalies, GroupID: "flowsentry-alerter", CommitInterval: time.Second, StartOffset: "first",
		SessionTimeout: 10 * time.Second}
}

// Validate names the bad key under prefix.
func (c Config) Validate(prefix string) error {
	var errs []error
	if c.Topic == "" {
		errs = append(errs, fmt.Errorf("%s.topic: required", prefix))
	}
	if c.GroupID == "" {
		errs = append(errs, fmt.Errorf("%s.group_id: required (the alerter needs its own consumer group)", prefix))
	}
	if c.CommitInterval <= 0 {
		errs = append(errs, fmt.Errorf("%s.commit_interval: must be positive", prefix))
	}
	if c.SessionTimeout < 6*time.Second || c.SessionTimeout > 5*time.Minute {
		// The broker's default group.min/max.session.timeout.ms.
		errs = append(errs, fmt.Errorf("%s.session_timeout: %s is outside the broker's usual 6s..5m", prefix, c.SessionTimeout))
	}
	if c.StartOffset != "first" && c.StartOffset != "last" {
		errs = append(errs, fmt.Errorf("%s.start_offset: %q is not first or last", prefix, c.StartOffset))
	}
	return errors.Join(errs...)
}

// Engine is what the consumer feeds.
type Engine interface {
	Handle(*pb.AnomalyEvent) *dispatch.Ticket
	Persist() error
}

// Reader is the part of kafka.Reader used (tests swap it).
type Reader interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
	Close() error
}

// Consumer feeds events to the engine and commits settled offsets.
type Consumer struct {
	cfg    Config
	r      Reader
	engine Engine
	log    *slog.Logger

	mu      sync.Mutex
	pending map[int][]pendingMsg // per partition, in offset order
	lastErr time.Time

	fetched, bad, committed prometheus.Counter
	lag                     prometheus.GaugeFunc
}

type pendingMsg struct {
	msg    kafka.Message
	ticket *dispatch.Ticket // nil: nothing to wait for (undecodable)
}

// NewReader opens the group reader.
func NewReader(cfg Config, brokers []string, dialer *kafka.Dialer) *kafka.Reader {
	start := kafka.FirstOffset
	if cfg.StartOffset == "last" {
		start = kafka.LastOffset
	}
	return kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, GroupID: cfg.GroupID, Topic: cfg.Topic, Dialer: dialer,
		MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond, StartOffset: start,
		// Commits are explicit and synchronous: only settled offsets.
		CommitInterval: 0, SessionTimeout: cfg.SessionTimeout, HeartbeatInterval: cfg.SessionTimeout / 3,
		ReadBackoffMin: 100 * time.Millisecond, ReadBackoffMax: 2 * time.Second})
}

// New returns a consumer.
func New(cfg Config, r Reader, engine Engine, reg prometheus.Registerer, log *slog.Logger) *Consumer {
	c := &Consumer{cfg: cfg, r: r, engine: engine, log: log, pending: map[int][]pendingMsg{}}
	c.fetched = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_kafka_messages_total",
		Help: "Anomaly messages fetched from Kafka."})
	c.bad = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_kafka_undecodable_total",
		Help: "Messages that are not a pb.AnomalyEvent (dropped, offset committed)."})
	c.committed = prometheus.NewCounter(prometheus.CounterOpts{Name: "flowsentry_alerter_kafka_commits_total",
		Help: "Offset commits."})
	c.lag = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "flowsentry_alerter_uncommitted_messages",
		Help: "Fetched messages whose offsets are not committed yet."}, func() float64 { return float64(c.Uncommitted()) })
	if reg != nil {
		reg.MustRegister(c.fetched, c.bad, c.committed, c.lag)
	}
	return c
}

// Uncommitted counts fetched but uncommitted messages.
func (c *Consumer) Uncommitted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, p := range c.pending {
		n += len(p)
	}
	return n
}

// Healthy reports a recent fetch error (readiness).
func (c *Consumer) Healthy() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if time.Since(c.lastErr) < 30*time.Second {
		return errors.New("kafka fetch failing")
	}
	return nil
}

// Run fetches until ctx ends, then commits what settled and closes.
func (c *Consumer) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	cctx, stop := context.WithCancel(context.Background())
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(c.cfg.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-cctx.Done():
				return
			case <-t.C:
				c.Commit(cctx)
			}
		}
	}()
	err := c.fetchLoop(ctx)
	stop()
	wg.Wait()
	fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	c.Commit(fctx)
	cancel()
	_ = c.r.Close()
	return err
}

func (c *Consumer) fetchLoop(ctx context.Context) error {
	for {
		m, err := c.r.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			c.mu.Lock()
			c.lastErr = time.Now()
			c.mu.Unlock()
			c.log.Warn("kafka fetch failed", "err", err)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			continue
		}
		c.fetched.Inc()
		var ev pb.AnomalyEvent
		var t *dispatch.Ticket
		if err := proto.Unmarshal(m.Value, &ev); err != nil {
			c.bad.Inc()
			c.log.Warn("undecodable anomaly message dropped", "partition", m.Partition, "offset", m.Offset, "err", err)
		} else {
			t = c.engine.Handle(&ev)
		}
		c.mu.Lock()
		c.pending[m.Partition] = append(c.pending[m.Partition], pendingMsg{msg: m, ticket: t})
		c.mu.Unlock()
	}
}

// Commit saves the engine's state, then commits per partition the longest
// run of settled messages.
func (c *Consumer) Commit(ctx context.Context) {
	c.mu.Lock()
	var upto []kafka.Message
	cut := map[int]int{}
	for p, list := range c.pending {
		n := 0
		for n < len(list) && (list[n].ticket == nil || list[n].ticket.Settled()) {
			n++
		}
		if n > 0 {
			upto = append(upto, list[n-1].msg)
			cut[p] = n
		}
	}
	c.mu.Unlock()
	if len(upto) == 0 {
		return
	}
	// The outcomes that settled these tickets must be on disk before
	// Kafka forgets the events.
	if err := c.engine.Persist(); err != nil {
		c.log.Error("state not saved; offsets not committed", "err", err)
		return
	}
	if err := c.r.CommitMessages(ctx, upto...); err != nil {
		c.log.Warn("offset commit failed (events will be re-read and deduplicated)", "err", err)
		return
	}
	c.committed.Inc()
	c.mu.Lock()
	for p, n := range cut {
		c.pending[p] = c.pending[p][n:]
	}
	c.mu.Unlock()
}
