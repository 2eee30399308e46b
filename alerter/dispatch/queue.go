package dispatch

import (
	"context"
	"sync"
)

// queue is a receiver's unbounded FIFO of deliveries: the engine must never
// block on a slow receiver while holding its lock; depth is a metric.
type queue struct {
	mu       sync.Mutex
	items    []*job
	inflight int
	wake     chan struct{}
	closed   bool
}

func newQueue() *queue { return &queue{wake: make(chan struct{}, 1)} }

func (q *queue) push(j *job) {
	q.mu.Lock()
	q.items = append(q.items, j)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *queue) pop(ctx context.Context) (*job, bool) {
	for {
		q.mu.Lock()
		if q.closed {
			q.mu.Unlock()
			return nil, false
		}
		if len(q.items) > 0 {
			j := q.items[0]
			q.items = q.items[1:]
			q.inflight++
			q.mu.Unlock()
			return j, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.wake:
		}
	}
}

func (q *queue) done() {
	q.mu.Lock()
	q.inflight--
	q.mu.Unlock()
}

// depth counts queued and in-flight deliveries.
func (q *queue) depth() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.items) + q.inflight
}

func (q *queue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}
