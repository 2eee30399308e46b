package produce

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packetworks/flowsentry/schemas/kafkaclient"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
)

// KafkaConfig is what the Kafka writer needs beyond the shared section.
type KafkaConfig struct {
	Topic        string
	Compression  string // none, lz4 or zstd
	BatchBytes   int    // our batch size: the writer's request batches hold several
	WriteTimeout time.Duration
}

// KafkaWriter writes FlowBatch messages with kafka-go, RequiredAcks=all.
type KafkaWriter struct {
	w       *kafka.Writer
	client  *kafka.Client
	dialer  *kafka.Dialer
	brokers []string
	topic   string
}

// Codec returns the kafka-go compression for a config name.
func Codec(name string) (compress.Compression, error) {
	switch name {
	case "", "none":
		return 0, nil
	case "lz4":
		return kafka.Lz4, nil
	case "zstd":
		return kafka.Zstd, nil
	case "snappy":
		return kafka.Snappy, nil
	case "gzip":
		return kafka.Gzip, nil
	}
	return 0, fmt.Errorf("compression %q is not one of none, lz4, zstd, snappy, gzip", name)
}

// NewKafkaWriter builds the writer from the shared kafka section.
func NewKafkaWriter(kc kafkaclient.Config, cfg KafkaConfig) (*KafkaWriter, error) {
	sec, err := kc.Resolve("kafka")
	if err != nil {
		return nil, err
	}
	codec, err := Codec(cfg.Compression)
	if err != nil {
		return nil, fmt.Errorf("produce.compression: %w", err)
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 10 * time.Second
	}
	tr := sec.Transport(kc.ClientID)
	w := &kafka.Writer{
		Addr:     kafka.TCP(kc.Brokers...),
		Topic:    cfg.Topic,
		Balancer: partitionBalancer{},
		// Our messages are batches already: send them at once, several per
		// request, and keep each partition's record batch under the
		// broker's default message.max.bytes (1 MiB).
		BatchSize:    64,
		BatchBytes:   int64(max(1<<20, 2*cfg.BatchBytes)),
		BatchTimeout: 2 * time.Millisecond,
		RequiredAcks: kafka.RequireAll,
		Compression:  codec,
		// Retries happen in Producer.send so that they hold the backlog.
		MaxAttempts:            1,
		WriteTimeout:           cfg.WriteTimeout,
		ReadTimeout:            cfg.WriteTimeout,
		Transport:              tr,
		AllowAutoTopicCreation: false,
	}
	return &KafkaWriter{w: w, topic: cfg.Topic, client: &kafka.Client{Addr: w.Addr, Transport: tr, Timeout: 10 * time.Second},
		dialer: sec.Dialer(kc.ClientID), brokers: kc.Brokers}, nil
}

// partitionBalancer sends each message to the partition its batch was
// built for (carried in WriterData), so the "all flows of a batch hash to
// its partition" rule holds even while the partition count changes.
type partitionBalancer struct{}

func (partitionBalancer) Balance(msg kafka.Message, partitions ...int) int {
	if p, ok := msg.WriterData.(int); ok {
		for _, q := range partitions {
			if q == p {
				return p
			}
		}
	}
	return kafka.Murmur2Balancer{}.Balance(msg, partitions...)
}

// Write implements Writer.
func (k *KafkaWriter) Write(ctx context.Context, msgs []*Message) error {
	km := make([]kafka.Message, len(msgs)) // per call: senders write concurrently
	for i, m := range msgs {
		km[i] = kafka.Message{Key: m.Key, Value: m.Value, WriterData: m.Partition}
	}
	return k.w.WriteMessages(ctx, km...)
}

// Partitions implements Writer. A topic that metadata does not list is
// asked about directly, so that a missing ACL is reported as one (kafka-go's
// metadata shows a topic the user may not describe as unknown).
func (k *KafkaWriter) Partitions(ctx context.Context) (int, error) {
	md, err := k.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{k.topic}})
	if err != nil {
		return 0, err
	}
	for _, t := range md.Topics {
		if t.Name == k.topic {
			if t.Error != nil {
				return 0, k.explain(ctx, fmt.Errorf("topic %s: %w", k.topic, t.Error))
			}
			return len(t.Partitions), nil
		}
	}
	return 0, k.explain(ctx, fmt.Errorf("topic %s not in metadata", k.topic))
}

func (k *KafkaWriter) explain(ctx context.Context, err error) error {
	if len(k.brokers) == 0 || k.dialer == nil {
		return err
	}
	problems, askErr := kafkaclient.TopicProblems(ctx, k.dialer, k.brokers[0], map[string]string{k.topic: "produce.topic"})
	if askErr != nil || len(problems) == 0 {
		return err
	}
	return errors.Join(problems...)
}

// Close implements Writer.
func (k *KafkaWriter) Close() error { return k.w.Close() }
