package worker

import (
	"context"
	"errors"
	"time"

	"github.com/packetworks/flowsentry/schemas/pb"
	"github.com/segmentio/kafka-go"
	"google.golang.org/protobuf/proto"
)

type pubItem struct {
	w     *kafka.Writer
	msg   kafka.Message
	flush chan error // a barrier: answered once everything before it is written
}

// Event implements engine.Sink. It runs under the engine lock; the queue
// keeps per-anomaly order (one publisher, FIFO) and blocks when full
// rather than drop.
func (w *Worker) Event(ev *pb.AnomalyEvent) {
	b, err := proto.Marshal(ev)
	if err != nil {
		w.log.Error("marshal event", "err", err)
		return
	}
	w.pub <- pubItem{w: w.events, msg: kafka.Message{Key: []byte(ev.Id), Value: b}}
}

// Snapshot implements engine.Sink.
func (w *Worker) Snapshot(s *pb.BaselineSnapshot) {
	b, err := proto.Marshal(s)
	if err != nil {
		w.log.Error("marshal snapshot", "err", err)
		return
	}
	w.pub <- pubItem{w: w.snaps, msg: kafka.Message{Key: []byte(s.Subnet), Value: b}}
}

// flush waits until everything queued before it is published.
func (w *Worker) flush(ctx context.Context) error {
	done := make(chan error, 1)
	select {
	case w.pub <- pubItem{flush: done}:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.pubDone:
		return errors.New("publisher stopped")
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (w *Worker) publisher(ctx context.Context) {
	defer close(w.pubDone)
	var batch []pubItem
	for {
		batch = batch[:0]
		select {
		case it := <-w.pub:
			batch = append(batch, it)
		case <-ctx.Done():
			return
		}
	drain:
		for len(batch) < 1000 {
			select {
			case it := <-w.pub:
				batch = append(batch, it)
			default:
				break drain
			}
		}
		// Write runs of the same writer in order; answer barriers after
		// what precedes them is written.
		for i := 0; i < len(batch); {
			it := batch[i]
			if it.flush != nil {
				it.flush <- nil
				i++
				continue
			}
			j := i
			var msgs []kafka.Message
			for ; j < len(batch) && batch[j].flush == nil && batch[j].w == it.w; j++ {
				msgs = append(msgs, batch[j].msg)
			}
			for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
				err := it.w.WriteMessages(ctx, msgs...)
				if err == nil {
					w.m.Published.WithLabelValues(it.w.Topic).Add(float64(len(msgs)))
					break
				}
				w.m.PublishErrors.Inc()
				w.log.Warn("publish failed; retrying", "topic", it.w.Topic, "messages", len(msgs), "err", err)
				select {
				case <-ctx.Done():
					w.log.Error("publisher stopped with unpublished messages", "topic", it.w.Topic, "messages", len(msgs))
					return
				case <-time.After(backoff):
				}
			}
			i = j
		}
	}
}
