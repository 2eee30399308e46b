package checkpoint

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packetworks/flowsentry/schemas/topics"
	"github.com/segmentio/kafka-go"
)

// Balancer sends a checkpoint record to the partition of its subnet, as
// the flows topic does (Kafka's murmur2 of the subnet key alone, without
// the direction suffix), so the owner of flows partition p finds its
// state in detector-state partition p. Both topics must have as many
// partitions (schemas/topics).
type Balancer struct{}

// Balance implements kafka.Balancer.
func (Balancer) Balance(msg kafka.Message, partitions ...int) int {
	key := string(msg.Key)
	if i := strings.LastIndexByte(key, '|'); i > 0 {
		key = key[:i]
	}
	return partitions[topics.Partition([]byte(key), len(partitions))%len(partitions)]
}

// Messages turns records into Kafka messages (nil Value = tombstone).
func Messages(recs []Record) []kafka.Message {
	out := make([]kafka.Message, len(recs))
	for i, r := range recs {
		out[i] = kafka.Message{Key: []byte(r.Key), Value: r.Value}
	}
	return out
}

// Load reads state partition p of topic from its first to its last offset
// and calls apply for every record (value nil for a tombstone). It returns
// the number of records read and how many apply refused (corrupt records:
// one loses one target's history, not the partition's).
func Load(ctx context.Context, brokers []string, dialer *kafka.Dialer, transport *kafka.Transport, topic string, p int,
	apply func(key string, value []byte) error) (n, bad int, err error) {
	client := &kafka.Client{Addr: kafka.TCP(brokers...), Transport: transport, Timeout: 20 * time.Second}
	first, last, err := offsets(ctx, client, topic, p)
	if err != nil {
		return 0, 0, err
	}
	if first < 0 || last <= first {
		return 0, 0, nil
	}
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p, Dialer: dialer,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
	defer r.Close()
	if err := r.SetOffset(first); err != nil {
		return 0, 0, err
	}
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return n, bad, fmt.Errorf("checkpoint: reading %s[%d] at offset %d of %d: %w", topic, p, n, last, err)
		}
		var v []byte
		if len(m.Value) > 0 {
			v = m.Value
		}
		if err := apply(string(m.Key), v); err != nil {
			bad++
		}
		n++
		if m.Offset >= last-1 {
			return n, bad, nil
		}
	}
}

// offsets returns the first and last offsets of topic[p]. Right after a
// topic is created or a leader moves, the broker answers "not leader" for
// a moment: such temporary errors are retried (with a bound) rather than
// failing the assignment, which would restart the worker.
func offsets(ctx context.Context, client *kafka.Client, topic string, p int) (first, last int64, err error) {
	delay := offsetRetry.first
	for i := 0; ; i++ {
		first, last, err = listOffsets(ctx, client, topic, p)
		var kerr kafka.Error
		if err == nil || i == offsetRetry.attempts-1 || !errors.As(err, &kerr) || !kerr.Temporary() {
			return first, last, err
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, offsetRetry.max)
	}
}

// offsetRetry bounds offsets' retries: about 30 s in all.
var offsetRetry = struct {
	attempts   int
	first, max time.Duration
}{20, 100 * time.Millisecond, 2 * time.Second}

func listOffsets(ctx context.Context, client *kafka.Client, topic string, p int) (first, last int64, err error) {
	resp, err := client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		topic: {kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p)}}})
	if err != nil {
		return 0, 0, fmt.Errorf("checkpoint: offsets of %s[%d]: %w", topic, p, err)
	}
	first, last = -1, -1
	for _, po := range resp.Topics[topic] {
		if po.Partition != p {
			continue
		}
		if po.Error != nil {
			return 0, 0, fmt.Errorf("checkpoint: offsets of %s[%d]: %w", topic, p, po.Error)
		}
		first, last = po.FirstOffset, po.LastOffset
	}
	return first, last, nil
}
