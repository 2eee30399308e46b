package sink

import (
	"errors"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/alerter/sink/retention"
	"github.com/packetworks/flowsentry/schemas/chclient"
	"github.com/packetworks/flowsentry/schemas/dedup"
	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/packetworks/flowsentry/schemas/topics"
)

// Config is the sink's YAML file (alerter/sink.example.yaml).
type Config struct {
	LogLevel   string             `yaml:"log_level"`
	HTTPAddr   string             `yaml:"http_addr"`
	Kafka      kafkaclient.Config `yaml:"kafka"`
	Consumer   ConsumerConfig     `yaml:"consumer"`
	ClickHouse chclient.Config    `yaml:"clickhouse"`
	Batch      BatchConfig        `yaml:"batch"`
	Retry      RetryConfig        `yaml:"retry"`
	Retention  retention.Config   `yaml:"retention"`
}

// ConsumerConfig names the group and the topics. An empty anomalies or
// baselines topic disables that stream.
type ConsumerConfig struct {
	GroupID         string `yaml:"group_id"`
	StartOffset     string `yaml:"start_offset"` // earliest | latest, for partitions the group never committed
	FlowsTopic      string `yaml:"flows_topic"`
	AnomaliesTopic  string `yaml:"anomalies_topic"`
	BaselinesTopic  string `yaml:"baselines_topic"`
	DeadLetterTopic string `yaml:"dead_letter_topic"`
	// ReplayCheckRows: after a partition is assigned, this many of its first
	// rows are checked against what flowsentry.flows already holds. 0 means
	// 2 x batch.max_rows, which covers the one batch the previous owner may
	// have inserted without committing (the sink commits after every insert
	// before it inserts the next batch).
	ReplayCheckRows int `yaml:"replay_check_rows"`
	// Dedup bounds the window of recently seen FlowBatch identities per
	// partition and producer, by which re-sent copies are dropped.
	Dedup dedup.Config `yaml:"dedup"`
}

// BatchConfig bounds an insert by size and by time.
type BatchConfig struct {
	MaxRows       int           `yaml:"max_rows"`
	MaxWait       time.Duration `yaml:"max_wait"`
	InsertTimeout time.Duration `yaml:"insert_timeout"`
	// QueueMessages is the per-topic channel of decoded messages between
	// the partition readers and the batcher: readers block (and Kafka keeps
	// the data) when it is full. It lets decoding overlap the insert; it
	// costs about queue_messages x flows per message x 300 B of memory.
	QueueMessages int `yaml:"queue_messages"`
}

// RetryConfig is the exponential backoff while ClickHouse or Kafka refuse.
type RetryConfig struct {
	InitialBackoff time.Duration `yaml:"initial_backoff"`
	MaxBackoff     time.Duration `yaml:"max_backoff"`
}

// DefaultConfig is the configuration a missing key falls back to.
func DefaultConfig() Config {
	k := kafkaclient.Default()
	k.ClientID = "flowsentry-sink"
	return Config{
		LogLevel: "info",
		HTTPAddr: ":9465",
		Kafka:    k,
		Consumer: ConsumerConfig{GroupID: "flowsentry-sink", StartOffset: "earliest",
			FlowsTopic: topics.Flows, AnomaliesTopic: topics.Anomalies, BaselinesTopic: topics.Baselines,
			DeadLetterTopic: topics.FlowsDeadLetter, Dedup: dedup.DefaultConfig()},
		ClickHouse: chclient.Default(),
		Batch:      BatchConfig{MaxRows: 100000, MaxWait: 2 * time.Second, InsertTimeout: 60 * time.Second, QueueMessages: 1024},
		Retry:      RetryConfig{InitialBackoff: 500 * time.Millisecond, MaxBackoff: 30 * time.Second},
		Retention:  retention.DefaultConfig(),
	}
}

// Validate checks every key and names the bad ones.
func (c Config) Validate() error {
	var errs []error
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log_level: %q is not debug, info, warn or error", c.LogLevel))
	}
	if err := c.Kafka.Validate("kafka"); err != nil {
		errs = append(errs, err)
	}
	if err := c.ClickHouse.Validate("clickhouse"); err != nil {
		errs = append(errs, err)
	}
	if c.ClickHouse.Username == "default" {
		errs = append(errs, errors.New("clickhouse.username: the sink must not connect as default (use flowsentry_writer)"))
	}
	cc := c.Consumer
	if cc.GroupID == "" {
		errs = append(errs, errors.New("consumer.group_id: required"))
	}
	if cc.StartOffset != "earliest" && cc.StartOffset != "latest" {
		errs = append(errs, fmt.Errorf("consumer.start_offset: %q is not earliest or latest", cc.StartOffset))
	}
	if cc.FlowsTopic == "" {
		errs = append(errs, errors.New("consumer.flows_topic: required"))
	}
	if cc.DeadLetterTopic == "" {
		errs = append(errs, errors.New("consumer.dead_letter_topic: required (invalid rows are never dropped silently)"))
	}
	seen := map[string]string{}
	for key, t := range map[string]string{"flows_topic": cc.FlowsTopic, "anomalies_topic": cc.AnomaliesTopic,
		"baselines_topic": cc.BaselinesTopic, "dead_letter_topic": cc.DeadLetterTopic} {
		if t == "" {
			continue
		}
		if other, dup := seen[t]; dup {
			errs = append(errs, fmt.Errorf("consumer.%s: topic %q is also consumer.%s", key, t, other))
		}
		seen[t] = key
	}
	if cc.ReplayCheckRows < 0 {
		errs = append(errs, errors.New("consumer.replay_check_rows: must not be negative"))
	}
	if err := cc.Dedup.Validate("consumer.dedup"); err != nil {
		errs = append(errs, err)
	}
	if c.Batch.MaxRows < 1 || c.Batch.MaxRows > 1000000 {
		// Above ClickHouse's max_insert_block_size (1048576) one INSERT
		// becomes several parts and is no longer atomic per day.
		errs = append(errs, fmt.Errorf("batch.max_rows: %d not in 1..1000000", c.Batch.MaxRows))
	}
	if c.Batch.MaxWait <= 0 {
		errs = append(errs, errors.New("batch.max_wait: must be positive"))
	}
	if c.Batch.InsertTimeout <= 0 {
		errs = append(errs, errors.New("batch.insert_timeout: must be positive"))
	}
	if c.Batch.QueueMessages < 1 {
		errs = append(errs, errors.New("batch.queue_messages: must be at least 1"))
	}
	if c.Retry.InitialBackoff <= 0 {
		errs = append(errs, errors.New("retry.initial_backoff: must be positive"))
	}
	if c.Retry.MaxBackoff < c.Retry.InitialBackoff {
		errs = append(errs, errors.New("retry.max_backoff: must be at least retry.initial_backoff"))
	}
	if err := c.Retention.Validate("retention"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// replayCheckRows resolves the 0 default.
func (c Config) replayCheckRows() int {
	if c.Consumer.ReplayCheckRows > 0 {
		return c.Consumer.ReplayCheckRows
	}
	return 2 * c.Batch.MaxRows
}
