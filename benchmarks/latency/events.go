package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

// eventLog collects the anomalies topic as it is published.
type eventLog struct {
	mu     sync.Mutex
	events []anomalyEvent
	bad    int // records that are not a pb.AnomalyEvent
}

func (l *eventLog) snapshot() ([]anomalyEvent, int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]anomalyEvent(nil), l.events...), l.bad
}

// read follows every partition of topic from its first offset (the topic is
// this run's own) with one reader each, no consumer group. MinBytes 1: a
// fetch returns as soon as a record is there, so arrival is within
// milliseconds of the publish.
func (l *eventLog) read(ctx context.Context, brokers []string, topic string, partitions int, since time.Time, logw io.Writer) {
	for p := range partitions {
		go func() {
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p,
				MinBytes: 1, MaxBytes: 10 << 20, MaxWait: 500 * time.Millisecond})
			defer r.Close()
			failing := false
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					if !failing {
						fmt.Fprintf(logw, "latency: reading %s[%d] (retrying): %v\n", topic, p, err)
					}
					failing = true
					time.Sleep(500 * time.Millisecond)
					continue
				}
				failing = false
				l.add(m, time.Now(), since)
			}
		}()
	}
}

func (l *eventLog) add(m kafka.Message, arrived, since time.Time) {
	var ev pb.AnomalyEvent
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := proto.Unmarshal(m.Value, &ev); err != nil || ev.GetId() == "" {
		l.bad++
		return
	}
	l.events = append(l.events, anomalyEvent{ID: ev.GetId(), Kind: ev.GetKind().String(), Class: ev.GetClass(),
		Severity: strings.ToLower(strings.TrimPrefix(ev.GetSeverity().String(), "SEVERITY_")),
		Customer: ev.GetCustomer(), Subnet: ev.GetSubnet(),
		Direction: strings.ToLower(strings.TrimPrefix(ev.GetDirection().String(), "DIRECTION_")),
		Published: recordTime(m.Time, arrived, since), Arrived: arrived})
}

// recordTime is the Kafka record timestamp when it is plausible. The
// detector's kafka-go writer stamps each record when it encodes the produce
// request (Message.Time is zero), so it is the publish time; a producer
// that sends no timestamp would yield 1970 or -1, which must not be taken
// for one.
func recordTime(ts, arrived, since time.Time) time.Time {
	if ts.Before(since.Add(-time.Minute)) || ts.After(arrived.Add(time.Second)) {
		return time.Time{}
	}
	return ts
}
