package sink

import (
	"context"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"
)

// KafkaDeadLetters produces dead letters to one topic and waits for the
// brokers' acknowledgement, so that the source offset is committed only
// once the record is safe somewhere. Headers say where it came from and why.
type KafkaDeadLetters struct {
	W *kafka.Writer
}

// NewKafkaDeadLetters writes synchronously with acks from all replicas.
func NewKafkaDeadLetters(brokers []string, topic string, transport *kafka.Transport) *KafkaDeadLetters {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic,
		RequiredAcks: kafka.RequireAll, Balancer: &kafka.Hash{}, BatchSize: 1000, BatchTimeout: 10 * time.Millisecond}
	if transport != nil { // a nil *Transport in the interface would be used
		w.Transport = transport
	}
	return &KafkaDeadLetters{W: w}
}

func (d *KafkaDeadLetters) Write(ctx context.Context, dl []DeadLetter) error {
	msgs := make([]kafka.Message, len(dl))
	for i, x := range dl {
		msgs[i] = kafka.Message{
			Key:   []byte(x.Source.Topic + "/" + strconv.Itoa(x.Source.Partition)),
			Value: x.Value,
			Headers: []kafka.Header{
				{Key: "error", Value: []byte(x.Err.Error())},
				{Key: "source-topic", Value: []byte(x.Source.Topic)},
				{Key: "source-partition", Value: []byte(strconv.Itoa(x.Source.Partition))},
				{Key: "source-offset", Value: []byte(strconv.FormatInt(x.Source.Offset, 10))},
				{Key: "source-index", Value: []byte(strconv.Itoa(x.Index))},
			},
		}
	}
	return d.W.WriteMessages(ctx, msgs...)
}

func (d *KafkaDeadLetters) Close() error { return d.W.Close() }
